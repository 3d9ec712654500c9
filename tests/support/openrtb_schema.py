"""Validation against IAB Tech Lab's OpenRTB 2.6 JSON Schemas (tests/conformance)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "conformance" / "openrtb-2.6"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    return Draft202012Validator(schema, registry=_registry())


def schema_errors(document: Any, name: str = "BidResponse") -> list[str]:
    """Every violation of the named schema, as readable lines (empty when valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator(name).iter_errors(document)
    ]


def example_requests() -> list[Path]:
    return sorted((SCHEMAS / "examples" / "bid-requests").glob("*.json"))
