"""deploy/observability, checked offline: promtool validates the scrape config and the alert rules
and runs the alerts' unit tests; every alert has its runbook and every runbook its alert; every
metric the rules and the dashboard read is one ChronaPilot exports; the dashboard is provisioned.

promtool comes from Debian's ``prometheus`` package, which ``make test`` installs when missing
(scripts/system-deps.sh)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chronapilot.common.settings import Settings

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "tests" / "alerts.test.yml"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "chronapilot.json"
COMPOSE_OVERRIDE = OBSERVABILITY / "docker-compose.observability.yml"
RUNBOOKS = REPO / "docs" / "runbooks"

#: The issue 19 metric contract: every one of these is defined in the code (a test proves it), and
#: rules and the dashboard read only metrics the code defines.
CONTRACT_METRICS = frozenset(
    {
        # every process (libs/common)
        "chronapilot_messages_handled_total",
        "chronapilot_handler_seconds",
        "chronapilot_dead_lettered_total",
        "chronapilot_outbox_published_total",
        "chronapilot_outbox_oldest_unsent_seconds",
        "chronapilot_outbox_relay_leader",
        "chronapilot_build_info",
        "chronapilot_ready",
        "chronapilot_consumer_lag",
        "chronapilot_provider_requests_total",
        "chronapilot_provider_request_seconds",
        # api and webhook-gateway
        "chronapilot_http_requests_total",
        "chronapilot_http_request_seconds",
        # webhook-gateway
        "chronapilot_webhook_notifications_total",
        "chronapilot_webhook_ack_seconds",
        "chronapilot_subscription_actions_total",
        "chronapilot_webhook_sync_requests_total",
        "chronapilot_webhook_subscription_reads_total",
        # sync-worker
        "chronapilot_sync_seconds",
        "chronapilot_sync_events_written_total",
        "chronapilot_sync_failures_total",
        # token-refresher
        "chronapilot_token_refreshes_total",
        "chronapilot_token_refresh_failures_total",
        "chronapilot_token_oldest_overdue_refresh_seconds",
        "chronapilot_tokens_expiring_within_hour",
        "chronapilot_token_revocations_total",
        "chronapilot_token_refresh_tick_seconds",
        # webhook-dispatcher
        "chronapilot_webhook_attempts_total",
        "chronapilot_webhook_attempt_seconds",
        "chronapilot_webhook_delivery_lag_seconds",
        "chronapilot_webhook_deliveries_created_total",
        # the ops console's fleet gauges
        "chronapilot_connections",
        "chronapilot_sync_staleness_seconds",
        "chronapilot_connections_stale",
        "chronapilot_subscriptions_expiring",
        "chronapilot_subscription_renewals_failing",
        "chronapilot_webhook_deliveries",
        "chronapilot_dead_letters",
    }
)
#: Series Prometheus makes itself.
PROMETHEUS_METRICS = frozenset({"up"})
#: What a histogram or a counter adds to its name in the exposition.
SERIES_SUFFIXES = ("_bucket", "_count", "_sum", "_created")

#: Scrape job -> the settings field of the port it scrapes (the services' /metrics ports).
SCRAPED_PORTS = {
    "api": "api_metrics_port",
    "webhook-gateway": "webhook_gateway_metrics_port",
    "sync-worker": "sync_worker_port",
    "token-refresher": "token_refresher_port",
    "webhook-dispatcher": "webhook_dispatcher_port",
    "ops": "ops_port",
}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    assert executable, "promtool is missing: `make test` installs it (scripts/system-deps.sh)"
    return subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def dashboard_panels() -> list[dict]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [p for p in panels if p["type"] != "row"]


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, strings and functions left out)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_matchers
    )
    names = set(re.findall(r"\b(chronapilot_[a-z0-9_]+|up)\b(?!\s*\()", without_groupings))
    return {base_name(name) for name in names}


def base_name(series: str) -> str:
    for suffix in SERIES_SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def metrics_in_code() -> set[str]:
    sources = [*REPO.glob("libs/*/src/**/*.py"), *REPO.glob("services/*/src/**/*.py")]
    return {name for path in sources for name in re.findall(r'"(chronapilot_[a-z0-9_]+)"', path.read_text())}


def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_accepts_the_scrape_config_with_the_ops_token_mounted(tmp_path):
    # As in the compose override: the config, its rules, and the ops token beside them.
    shutil.copy(PROMETHEUS / "prometheus.yml", tmp_path)
    shutil.copy(RULES, tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ops_token").write_text("a-token\n")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say():
    result = promtool("test", "rules", str(RULE_TESTS.relative_to(PROMETHEUS)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not():
    cases = [
        case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    for rule in alert_rules():
        own = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in own), f"no test fires {rule['alert']}"
        assert any(not case["exp_alerts"] for case in own), f"no test keeps {rule['alert']} quiet"


def test_every_alert_has_a_for_a_severity_a_summary_a_description_and_a_runbook():
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in alert_rules():
        assert re.fullmatch(r"[1-9][0-9]*m", rule.get("for", "")), f"{rule['alert']}: `for:` in minutes"
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), rule["alert"]
        assert re.fullmatch(r"docs/runbooks/[a-z0-9-]+\.md", annotations["runbook_url"]), rule["alert"]


def test_every_alert_has_a_runbook_and_every_runbook_an_alert():
    runbook_of = {rule["alert"]: rule["annotations"]["runbook_url"] for rule in alert_rules()}
    runbooks = {f"docs/runbooks/{path.name}" for path in RUNBOOKS.glob("*.md")} - {"docs/runbooks/README.md"}
    assert sorted(runbook_of.values()) == sorted(runbooks), "one runbook per alert, one alert per runbook"
    index = (RUNBOOKS / "README.md").read_text()
    for alert, url in runbook_of.items():
        runbook = (REPO / url).read_text()
        assert runbook.startswith(f"# {alert}\n"), f"{url} is titled by its alert"
        for section in ("## What it means", "## Impact", "## Diagnose", "## Fix"):
            assert f"\n{section}" in runbook, f"{url} lacks {section}"
        assert alert in index and f"({Path(url).name})" in index, f"the index misses {alert}"


def test_every_metric_the_rules_and_the_dashboard_read_is_exported():
    known = metrics_in_code() | PROMETHEUS_METRICS  # a metric the code stops exporting fails here
    for rule in alert_rules():
        read = metric_names(rule["expr"])
        assert read, f"{rule['alert']} reads no metric"
        assert read <= known, f"{rule['alert']} reads unknown metrics {read - known}"
    for panel in dashboard_panels():
        for target in panel["targets"]:
            read = metric_names(target["expr"])
            assert read, f"panel {panel['title']!r} reads no metric"
            assert read <= known, f"panel {panel['title']!r} reads unknown metrics {read - known}"


def test_every_metric_of_the_contract_is_defined_in_the_code():
    assert metrics_in_code() >= CONTRACT_METRICS, CONTRACT_METRICS - metrics_in_code()


def test_the_metric_name_scan_sees_every_name_and_no_label():
    expr = (
        "histogram_quantile(0.95, sum by (le, route)"
        ' (rate(chronapilot_http_request_seconds_bucket{route="x"}[5m])))'
        " / on (job) group_left sum(up) or absent(chronapilot_build_info)"
    )
    assert metric_names(expr) == {"chronapilot_http_request_seconds", "up", "chronapilot_build_info"}


def test_the_dashboard_queries_are_valid_promql(tmp_path):
    # Grafana's $__rate_interval is resolved at query time; promtool parses the rest.
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(dashboard_queries())
    ]
    (tmp_path / "dashboard.rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    result = promtool("check", "rules", "dashboard.rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_provisioned_with_the_prometheus_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert dashboard["uid"] and dashboard["title"]
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "chronapilot.yml").read_text())
    (provider,) = providers["providers"]
    grafana = yaml.safe_load(COMPOSE_OVERRIDE.read_text())["services"]["grafana"]
    mounts = dict(
        volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"] if volume.startswith("./")
    )
    assert mounts["./deploy/observability/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/observability/grafana/dashboards"] == provider["options"]["path"]


def test_the_compose_override_runs_pinned_images_on_files_that_exist():
    override = yaml.safe_load(COMPOSE_OVERRIDE.read_text())
    assert set(override["services"]) == {"prometheus", "grafana"}
    for name, service in override["services"].items():
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), f"{name}: pin the image"
        for volume in service["volumes"]:
            if volume.startswith("./"):
                assert (REPO / volume.split(":")[0]).exists(), volume
    prometheus = override["services"]["prometheus"]
    (secret,) = prometheus["secrets"]
    assert override["secrets"][secret["source"]] == {"environment": "CHRONAPILOT_OPS_TOKEN"}
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    ops = next(job for job in config["scrape_configs"] if job["job_name"] == "ops")
    token_file = ops["authorization"]["credentials_file"]
    assert secret["target"] == f"/etc/prometheus/{token_file}", (
        "the token is mounted where the config reads it"
    )


def test_prometheus_scrapes_every_service_on_its_metrics_port():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    defaults = Settings().service
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SCRAPED_PORTS)
    for name, port_field in SCRAPED_PORTS.items():
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery["names"] == [name] and discovery["type"] == "A"
        assert discovery["port"] == getattr(defaults, port_field), name
    assert config["rule_files"] == [RULES.name]


@pytest.mark.parametrize("public_port", ["api_port", "webhook_gateway_port"])
def test_no_public_port_is_scraped(public_port):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    scraped = {d["port"] for job in config["scrape_configs"] for d in job["dns_sd_configs"]}
    assert getattr(Settings().service, public_port) not in scraped
