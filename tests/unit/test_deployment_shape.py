"""docker-compose.yml can't run here; these checks keep it true to the code."""

import importlib.util
import re
from pathlib import Path

import yaml

from chronapilot.common.settings import Settings, setting_env_names
from chronapilot.devstack.stack import DevstackSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
APP_SERVICES = {
    "api": ("chronapilot.api", "api_port"),
    "webhook-gateway": ("chronapilot.webhook_gateway", "webhook_gateway_port"),
    "sync-worker": ("chronapilot.sync_worker", "sync_worker_port"),
    "token-refresher": ("chronapilot.token_refresher", "token_refresher_port"),
    "webhook-dispatcher": ("chronapilot.webhook_dispatcher", "webhook_dispatcher_port"),
    "ops": ("chronapilot.ops", "ops_port"),
}


def test_compose_has_kafka_in_kraft_mode_a_mongodb_replica_set_and_the_four_services():
    services = COMPOSE["services"]
    assert set(services) == {"kafka", "mongo", *APP_SERVICES}
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "--replSet" in services["mongo"]["command"]
    for name in services:
        assert "healthcheck" in services[name], name


def test_every_service_builds_from_the_one_dockerfile_and_runs_a_real_module():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    for name, (module, _) in APP_SERVICES.items():
        build = COMPOSE["services"][name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert build["args"]["MODULE"] == module
        assert (REPO / build["args"]["SERVICE_DIR"] / "pyproject.toml").exists()
        assert importlib.util.find_spec(module + ".__main__") is not None
        health = COMPOSE["services"][name]["healthcheck"]["test"]
        assert health[:4] == ["CMD", "python", "-m", "chronapilot.common.healthcheck"]
        assert health[4] == module.removeprefix("chronapilot.")
    assert "ARG SERVICE_DIR" in dockerfile and "ARG MODULE" in dockerfile


def test_ports_match_the_settings_defaults():
    defaults = Settings().service
    for name, (_, port_field) in APP_SERVICES.items():
        service = COMPOSE["services"][name]
        port = str(getattr(defaults, port_field))
        published = service.get("ports", []) + service.get("expose", [])
        assert any(str(p).split(":")[-1] == port for p in published), (name, published)
        env_name = f"CHRONAPILOT_{port_field.upper()}"
        assert service["environment"][env_name] == port


def test_the_public_services_metrics_ports_are_exposed_inside_compose_but_never_published():
    defaults = Settings().service
    for name, port_field in (
        ("api", "api_metrics_port"),
        ("webhook-gateway", "webhook_gateway_metrics_port"),
    ):
        service = COMPOSE["services"][name]
        port = str(getattr(defaults, port_field))
        assert service["environment"][f"CHRONAPILOT_{port_field.upper()}"] == port
        assert port in [str(p) for p in service.get("expose", [])], (name, service.get("expose"))
        assert all(str(p).split(":")[-1] != port for p in service.get("ports", [])), (name, service["ports"])


def test_every_setting_compose_names_exists_in_the_code():
    known = set(setting_env_names())
    for name in APP_SERVICES:
        for variable in COMPOSE["services"][name]["environment"]:
            assert variable in known, f"{name} sets unknown {variable}"


def test_the_readme_configuration_table_lists_every_setting():
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    expected = set(setting_env_names()) | {
        f"CHRONAPILOT_{name.upper()}" for name in DevstackSettings.model_fields
    }
    assert expected - documented == set(), "README misses settings"
    assert documented - expected == set(), "README lists settings the code doesn't read"
