"""The custom search attributes every workflow sets, so operators can filter in Temporal Web.

They carry internal ids only: Temporal stores search attributes unencrypted, so never an email,
a phone number or a name. A server must know an attribute before a workflow upserts it;
:func:`register` adds the missing ones to a namespace and is safe to call on every start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
CAMPAIGN_ID = SearchAttributeKey.for_keyword("CampaignId")
CAMPAIGN_STATUS = SearchAttributeKey.for_keyword("CampaignStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
JOURNEY_ID = SearchAttributeKey.for_keyword("JourneyId")

ALL: tuple[SearchAttributeKey[str], ...] = (
    TENANT_ID,
    CAMPAIGN_ID,
    CAMPAIGN_STATUS,
    CUSTOMER_ID,
    JOURNEY_ID,
)

OPERATOR_TIMEOUT = timedelta(seconds=10)


class SearchAttributesMissing(RuntimeError):
    """The namespace lacks some of our attributes and this client may not add them."""


def _indexed_type(key: SearchAttributeKey[str]) -> IndexedValueType.ValueType:
    # The SDK's enum mirrors the API's numbering one to one.
    kind: SearchAttributeIndexedValueType = key.indexed_value_type
    return IndexedValueType.ValueType(kind.value)


async def _registered(client: Client, namespace: str) -> dict[str, int] | None:
    """The namespace's custom attributes and their types; None when the server cannot list
    them (Temporal's time-skipping test server only implements adding)."""
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace), timeout=OPERATOR_TIMEOUT
        )
    except RPCError as error:
        if error.status == RPCStatusCode.UNIMPLEMENTED:
            return None
        raise
    return dict(response.custom_attributes)


async def _add(
    client: Client, namespace: str, attributes: dict[str, IndexedValueType.ValueType]
) -> None:
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=attributes),
            timeout=OPERATOR_TIMEOUT,
        )
    except RPCError as error:
        if error.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            commands = "; ".join(
                f"temporal operator search-attribute create --namespace {namespace} "
                f"--name {name} --type {kind_name(kind)}"
                for name, kind in sorted(attributes.items())
            )
            raise SearchAttributesMissing(
                f"namespace {namespace!r} lacks search attributes "
                f"{', '.join(sorted(attributes))} and this client may not add them "
                f"({error.message}); an operator can: {commands}"
            ) from error
        raise


def kind_name(kind: IndexedValueType.ValueType) -> str:
    """``Keyword`` for INDEXED_VALUE_TYPE_KEYWORD, as the CLI spells types."""
    words = IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_").split("_")
    return "".join(word.capitalize() for word in words)


async def register(
    client: Client, namespace: str, keys: Sequence[SearchAttributeKey[str]] = ALL
) -> list[str]:
    """Add the attributes in ``keys`` that ``namespace`` lacks; returns the names added.

    Idempotent, and safe when two processes start at once: an attribute another process added
    in between counts as present. Raises :class:`SearchAttributesMissing` when some are missing
    and the server refuses to add them (Temporal Cloud, or a key without operator rights), and
    ``ValueError`` when one exists with another type.
    """
    wanted = {key.name: _indexed_type(key) for key in keys}
    present = await _registered(client, namespace)
    if present is None:
        # Cannot list: add one at a time, an existing one answers ALREADY_EXISTS.
        added = []
        for name, kind in wanted.items():
            try:
                await _add(client, namespace, {name: kind})
            except RPCError as error:
                if error.status != RPCStatusCode.ALREADY_EXISTS:
                    raise
            else:
                added.append(name)
        return sorted(added)
    clashes = [name for name, kind in wanted.items() if name in present and present[name] != kind]
    if clashes:
        raise ValueError(
            f"search attributes {', '.join(sorted(clashes))} exist in namespace {namespace!r} "
            "with another type"
        )
    missing = {name: kind for name, kind in wanted.items() if name not in present}
    if not missing:
        return []
    try:
        await _add(client, namespace, missing)
    except RPCError as error:
        # Another process added some in between: fine if nothing is missing now.
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        now = await _registered(client, namespace) or {}
        if set(missing) - set(now):
            raise
        return []
    log.info("registered search attributes %s in namespace %s", sorted(missing), namespace)
    return sorted(missing)
