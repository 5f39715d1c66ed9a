"""docker-compose.yml can't run here; these checks keep it true to the code."""

import importlib.util
import re
import tomllib
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


def workspace_distributions() -> set[str]:
    return {
        tomllib.loads(path.read_text())["project"]["name"]
        for path in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]
    }


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [
        " ".join(part.split()) for part in "\n".join(lines).replace("\\\n", " ").split("\n") if part.strip()
    ]


def test_every_image_stage_starts_from_the_official_python_pinned_by_digest():
    stages = [line.split()[1] for line in dockerfile_instructions() if line.startswith("FROM ")]
    assert len(stages) == 2
    for image in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    assert len(set(stages)) == 1, "the venv built in the first stage runs on the same interpreter"


def test_the_image_installs_its_service_from_the_lock_and_keeps_only_the_venv():
    instructions = dockerfile_instructions()
    runs = [line for line in instructions if line.startswith("RUN ")]
    syncs = [line for line in runs if "uv sync" in line]
    assert len(syncs) == 1, runs
    for flag in ("--frozen", "--no-dev", "--no-editable", '--package "$PACKAGE"'):
        assert flag in syncs[0], (flag, syncs[0])
    assert not any("pip install" in line and "uv==" not in line for line in runs), "nothing beside the lock"
    assert "COPY pyproject.toml uv.lock ./" in instructions
    final = instructions[max(i for i, line in enumerate(instructions) if line.startswith("FROM ")) :]
    assert [line for line in final if line.startswith("COPY")] == [
        "COPY --from=build /opt/chronapilot /opt/chronapilot"
    ]
    assert any(line.startswith("USER ") and "root" not in line for line in final)


def test_the_build_uses_the_uv_the_makefile_pins():
    makefile = (REPO / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned is not None
    assert f"ARG UV_VERSION={pinned[1]}" in dockerfile_instructions()
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]
    assert config["required-version"] == f"=={pinned[1]}"


def test_the_build_context_leaves_out_environments_caches_and_tests():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    for heavy in (
        ".git",
        ".venv",
        ".uv",
        ".run",
        "test-artifacts",
        "tests",
        "**/node_modules",
        "**/__pycache__",
    ):
        assert heavy in ignored, heavy
    for needed in ("pyproject.toml", "uv.lock", "libs", "services"):
        assert not any(pattern in (needed, f"{needed}/", "*") for pattern in ignored), needed


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
        assert build["args"]["PACKAGE"] == f"chronapilot-{name}"
        assert build["args"]["PACKAGE"] in workspace_distributions()
        assert importlib.util.find_spec(module + ".__main__") is not None
        health = COMPOSE["services"][name]["healthcheck"]["test"]
        assert health[:4] == ["CMD", "python", "-m", "chronapilot.common.healthcheck"]
        assert health[4] == module.removeprefix("chronapilot.")
    assert "ARG PACKAGE" in dockerfile and "ARG MODULE" in dockerfile


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
