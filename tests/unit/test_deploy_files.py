"""The deployment files against the code they start: compose, Dockerfile, Prometheus, Grafana,
Helm and Kustomize.

No container engine or cluster runs here, so the files are read as data and compared with what
the code accepts: the commands of the CLI, the variables Settings reads, the metrics the
registry exports. promtool and kubectl, where installed, check the rest.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import BaseModel

import adapters.metrics  # noqa: F401  (registers the platform's metrics on REGISTRY)
from adapters.settings import Settings
from workers.cli import cli

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "bidding.json"
CHART = DEPLOY / "helm" / "campaign-express"
KUSTOMIZE = DEPLOY / "k8s"

EXPECTED_SERVICES = frozenset(
    {
        "temporal",
        "temporal-ui",
        "postgresql",
        "redis",
        "nats",
        "clickhouse",
        "migrate",
        "api",
        "worker",
        "bidder-1",
        "bidder-2",
        "analytics-sink",
        "prometheus",
    }
)
# The seed's alert list (section 11.3).
SEED_ALERTS = frozenset(
    {
        "HighErrorRate",
        "HighLatency",
        "LowCacheHitRate",
        "NatsStreamLag",
        "PodCrashLooping",
        "HighMemoryUsage",
        "DiskSpaceLow",
        "CertificateExpiry",
        "ClickHouseSlow",
        "CampaignBudgetExceeded",
        "InferenceBackendDown",
    }
)
OUR_IMAGE = "campaign-express"
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_])campaign_[a-z0-9_]+")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --- what the code accepts -------------------------------------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside a field's type (``Group``, ``Group | None``), if there is one."""
    if typing.get_origin(annotation) is None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return None
    for argument in typing.get_args(annotation):
        model = _nested_model(argument)
        if model is not None:
            return model
    return None


def settings_env_names(model: type[BaseModel], prefix: str, delimiter: str) -> frozenset[str]:
    """Every environment variable that sets a field of ``model``, nested groups included.

    A group can be set whole (``CE_BID`` as JSON) or field by field (``CE_BID__SEAT``).
    """
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name}".upper()
        names.add(name)
        nested = _nested_model(field.annotation)
        if nested is not None:
            names |= settings_env_names(nested, f"{name}{delimiter}", delimiter)
    return frozenset(names)


SETTINGS_ENV_NAMES = settings_env_names(
    Settings,
    Settings.model_config.get("env_prefix", ""),
    Settings.model_config.get("env_nested_delimiter") or "__",
)


def exported_metric_names() -> frozenset[str]:
    """The sample names /metrics shows for the campaign_* metrics registered by adapters.metrics."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("campaign_"):
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return frozenset(names)


def check_cli_command(args: list[str]) -> None:
    """Parse ``args`` as the CLI would (options and all) without running the command."""
    assert args, "no command given"
    name, *rest = args
    command = cli.commands.get(name)
    assert command is not None, (
        f"`campaign-express {name}` is not a command of the CLI; it has {sorted(cli.commands)}"
    )
    try:
        command.make_context(name, list(rest))
    except click.ClickException as error:
        pytest.fail(f"`campaign-express {' '.join(args)}` does not parse: {error.format_message()}")


# --- reading the files -----------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def load_yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.safe_load_all(stream) if document is not None]


COMPOSE: dict[str, Any] = load_yaml(COMPOSE_FILE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def resolve_interpolation(text: str) -> str | None:
    """``text`` with compose's ${...} replaced by their defaults; None where one has none."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        if match["op"] in {":-", "-"}:
            return match["arg"]
        missing = True
        return ""

    resolved = INTERPOLATION.sub(replace, text)
    return None if missing else resolved


def is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name_end = image.rfind("/") + 1
    _, colon, tag = image[name_end:].partition(":")
    return bool(colon and tag and tag != "latest")


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """Service name -> condition, for both forms compose accepts."""
    dependencies = service.get("depends_on", {})
    if isinstance(dependencies, list):
        return dict.fromkeys(dependencies, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in dependencies.items()}


def is_ours(service: Mapping[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith(f"{OUR_IMAGE}:")


OUR_SERVICES = sorted(name for name, service in SERVICES.items() if is_ours(service))


def env_names_anywhere(node: Any) -> Iterator[str]:
    """CE_* names set anywhere in a compose document: environment mappings, lists and anchors."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("CE_"):
                yield key
            yield from env_names_anywhere(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and re.match(r"CE_\w+=", item):
                yield item.split("=", 1)[0]
            else:
                yield from env_names_anywhere(item)


def helm_components() -> dict[str, dict[str, Any]]:
    components: dict[str, dict[str, Any]] = load_yaml(CHART / "values.yaml")["components"]
    return components


def kustomize_documents() -> list[tuple[Path, Any]]:
    return [
        (path, document)
        for path in sorted(KUSTOMIZE.rglob("*.yaml"))
        for document in load_yaml_documents(path)
    ]


def kustomize_workloads() -> dict[str, list[str]]:
    """Deployment or Job name -> its container's args, from the Kustomize base."""
    workloads: dict[str, list[str]] = {}
    for path, document in kustomize_documents():
        if path.parent.name == "base" and document.get("kind") in {"Deployment", "Job"}:
            (container,) = document["spec"]["template"]["spec"]["containers"]
            workloads[document["metadata"]["name"]] = container["args"]
    return workloads


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS_FILE)["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


# --- tests: the settings and metrics derivations themselves ----------------------------------


def test_settings_env_names_include_nested_groups_when_derived_from_settings() -> None:
    assert {"CE_DATABASE_URL", "CE_BID", "CE_BID__SEAT", "CE_ANALYTICS__BATCH_SIZE"} <= (
        SETTINGS_ENV_NAMES
    )
    assert "CE_BID__NO_SUCH_FIELD" not in SETTINGS_ENV_NAMES


def test_exported_metric_names_carry_prometheus_suffixes_when_read_from_registry() -> None:
    names = exported_metric_names()
    assert {
        "campaign_bid_requests_total",
        "campaign_bid_latency_seconds_bucket",
        "campaign_bid_latency_seconds_count",
        "campaign_active_campaigns",
    } <= names
    assert "campaign_bid_requests" not in names


# --- tests: docker-compose.yml ---------------------------------------------------------------


def test_compose_file_declares_every_service_of_the_stack() -> None:
    assert "version" not in COMPOSE, "the compose spec has no `version:` key"
    assert set(SERVICES) == EXPECTED_SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_image_is_pinned_when_service_runs(name: str) -> None:
    image = SERVICES[name].get("image")
    assert image, f"{name} has no image"
    resolved = resolve_interpolation(image)
    assert resolved is not None, f"{name}'s image {image!r} needs a variable with no default"
    assert is_pinned(resolved), f"{name}'s image {resolved!r} is not pinned to a tag or digest"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_service_has_healthcheck_when_long_running(name: str) -> None:
    healthcheck = SERVICES[name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    if healthcheck.get("disable"):
        # Only a one-shot may go without one: its exit code is what dependents wait for.
        assert SERVICES[name].get("restart") == "no", f"{name} disables its healthcheck"
        waiters = [
            other
            for other, service in SERVICES.items()
            if depends_on(service).get(name) == "service_completed_successfully"
        ]
        assert waiters, f"{name} disables its healthcheck but nobody waits for it to complete"
    else:
        assert healthcheck.get("test"), f"{name}'s healthcheck has no test"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_depends_on_names_existing_services_when_declared(name: str) -> None:
    for dependency, condition in depends_on(SERVICES[name]).items():
        assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
        assert condition in {
            "service_started",
            "service_healthy",
            "service_completed_successfully",
        }


@pytest.mark.parametrize("name", ["api", "worker", "bidder-1", "bidder-2"])
def test_compose_service_waits_for_migrations_when_it_reads_the_database(name: str) -> None:
    assert depends_on(SERVICES[name]).get("migrate") == "service_completed_successfully"


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_compose_command_is_a_cli_command_when_service_is_ours(name: str) -> None:
    check_cli_command([str(word) for word in SERVICES[name]["command"]])


def test_compose_env_names_are_settings_fields_when_set_anywhere() -> None:
    names = set(env_names_anywhere(COMPOSE))
    assert "CE_DATABASE_URL" in names
    assert names - SETTINGS_ENV_NAMES == set(), "Settings ignores these (extra='ignore')"


def test_compose_api_publishes_rest_grpc_and_metrics_ports() -> None:
    published = {str(port).split(":")[-1] for port in SERVICES["api"]["ports"]}
    assert {"8080", "9090", "9091"} <= published


# --- tests: Dockerfile -----------------------------------------------------------------------


def _dockerfile_instruction(keyword: str) -> list[str]:
    lines = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    return [line.split(None, 1)[1] for line in lines if line.split(None, 1)[:1] == [keyword]]


def test_dockerfile_default_command_is_a_cli_command() -> None:
    assert _dockerfile_instruction("ENTRYPOINT") == ['["campaign-express"]']
    (cmd,) = _dockerfile_instruction("CMD")
    check_cli_command(json.loads(cmd))


def test_dockerfile_runs_as_non_root_and_exposes_service_ports() -> None:
    users = _dockerfile_instruction("USER")
    assert users, "the image runs as root"
    assert users[-1] not in {"root", "0"}
    exposed = {port for line in _dockerfile_instruction("EXPOSE") for port in line.split()}
    assert exposed == {"8080", "9090", "9091"}


def test_dockerfile_env_names_are_settings_fields() -> None:
    names = set(re.findall(r"\b(CE_\w+)=", DOCKERFILE.read_text(encoding="utf-8")))
    assert names - SETTINGS_ENV_NAMES == set()


# --- tests: Prometheus and Grafana -----------------------------------------------------------


def test_alert_rules_cover_the_seed_alerts_with_severity_and_summary() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == SEED_ALERTS
    assert len(rules) == len(SEED_ALERTS)
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_alert_rules_reference_only_exported_metrics() -> None:
    exported = exported_metric_names()
    referenced = {
        (rule["alert"], name)
        for rule in alert_rules()
        for name in METRIC_NAME.findall(rule["expr"])
    }
    assert referenced, "no rule reads our metrics"
    assert {pair for pair in referenced if pair[1] not in exported} == set()


def test_dashboard_queries_reference_only_exported_metrics() -> None:
    exported = exported_metric_names()
    referenced = {name for expr in dashboard_expressions() for name in METRIC_NAME.findall(expr)}
    assert referenced, "the dashboard reads none of our metrics"
    assert referenced - exported == set()


def test_prometheus_config_loads_the_alert_rules() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert "alerts.yml" in config["rule_files"]
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    # Every process of ours in the compose stack is scraped on its metrics port.
    assert {f"{name}:9091" for name in OUR_SERVICES if name != "migrate"} <= targets


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_alert_rules_pass_promtool_unit_tests_when_promtool_installed() -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- tests: Helm and Kustomize ---------------------------------------------------------------


def test_helm_chart_metadata_and_values_parse() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "campaign-express"
    assert chart["version"]
    values = load_yaml(CHART / "values.yaml")
    assert set(values["components"]) == {"api", "bidder", "worker", "analytics-sink"}


@pytest.mark.parametrize("component", sorted(helm_components()))
def test_helm_component_args_are_a_cli_command(component: str) -> None:
    check_cli_command([str(word) for word in helm_components()[component]["args"]])


def test_helm_config_names_are_settings_fields() -> None:
    values = load_yaml(CHART / "values.yaml")
    assert set(values["config"]) - SETTINGS_ENV_NAMES == set()


def test_kustomize_files_parse_as_yaml() -> None:
    documents = kustomize_documents()
    kustomizations = {
        path.parent.name for path, _ in documents if path.name == "kustomization.yaml"
    }
    assert kustomizations == {"base", "staging", "prod"}


@pytest.mark.parametrize("workload", sorted(kustomize_workloads()))
def test_kustomize_workload_args_are_a_cli_command(workload: str) -> None:
    check_cli_command([str(word) for word in kustomize_workloads()[workload]])


def test_kustomize_config_literals_are_settings_fields() -> None:
    names = {
        literal.split("=", 1)[0]
        for path, document in kustomize_documents()
        if path.name == "kustomization.yaml"
        for generator in document.get("configMapGenerator", [])
        for literal in generator.get("literals", [])
    }
    assert "CE_ENVIRONMENT" in names
    assert names - SETTINGS_ENV_NAMES == set()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", ["base", "overlays/staging", "overlays/prod"])
def test_kustomize_overlay_builds_when_kubectl_installed(overlay: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    kinds = {document["kind"] for document in yaml.safe_load_all(result.stdout) if document}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Job"} <= kinds
