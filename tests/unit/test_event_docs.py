"""The public event catalogue (docs/events) is generated from the models and stays in step."""

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from chronapilot.common.bus import catalogue, docs
from chronapilot.common.bus.catalogue import wrap
from chronapilot.common.bus.topics import Topic, topic_name
from chronapilot.common.ids import is_valid_id, new_id
from chronapilot.common.settings import KafkaSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"
NOW = datetime(2026, 11, 25, tzinfo=UTC)

SAMPLES = [
    catalogue.ConnectionActivated(
        application_id="app_1", user_id="usr_1", provider="google", email="a@example.com"
    ),
    catalogue.ConnectionDisconnected(application_id="app_1", provider="microsoft"),
    catalogue.ConnectionStatusChanged(
        status="error",
        previous_status="active",
        sync_mode="realtime",
        previous_sync_mode="polling",
        error_code="reauth_required",
        error_message="grant revoked",
        previous_error_code="sync_failed",
        previous_error_message="503",
        previous_error_at=NOW,
    ),
    catalogue.ConnectionSubscriptionsReleased(stopped=3, failed=0),
    catalogue.SyncRequested(mode="full", reason="initial"),
    catalogue.SyncCompleted(
        mode="incremental", reason="webhook", synced_at=NOW, calendars=2, upserted=10, deleted=1
    ),
    catalogue.SyncFailed(
        mode="full",
        reason="manual",
        error_code="sync_failed",
        error_message="503",
        retryable=True,
        calendar_id="cal_1",
    ),
    catalogue.TokenRefreshed(expires_at=NOW, rotated=True),
    catalogue.TokenRefreshFailed(reason="invalid_grant", permanent=True, failures_count=1),
    catalogue.SubscriptionCreated(subscription_id="sub_1", calendar_id="primary", expires_at=NOW),
    catalogue.SubscriptionRenewed(subscription_id="sub_1", calendar_id="primary", expires_at=NOW),
    catalogue.SubscriptionRemoved(subscription_id="sub_1", calendar_id="primary", reason="disconnected"),
    catalogue.SubscriptionLifecycleNotified(
        subscription_id="sub_1", calendar_id="primary", lifecycle_event="missed"
    ),
    catalogue.MirrorEventsChanged(
        application_id="app_1", calendar_id="cal_1", created=["evt_1"], updated=[], deleted=["evt_2"]
    ),
    catalogue.MirrorCalendarsChanged(application_id="app_1", created=["cal_1"], removed=["cal_2"]),
]


def test_the_committed_catalogue_is_what_the_models_generate(tmp_path):
    docs.write(tmp_path)
    for name in ("asyncapi.json", "README.md"):
        assert (DOCS / name).read_text() == (tmp_path / name).read_text(), (
            f"docs/events/{name} is stale: run `make docs`"
        )


def test_every_event_type_is_documented_and_real_messages_match_their_schema():
    assert {type(sample) for sample in SAMPLES} == set(catalogue.EVENT_TYPES)
    spec = json.loads((DOCS / "asyncapi.json").read_text())
    messages = spec["components"]["messages"]
    for sample in SAMPLES:
        # references point into the document's components: resolve them from there
        schema = {**messages[sample.TYPE.replace(".", "_")]["payload"], "components": spec["components"]}
        message = json.loads(wrap(sample, "con_1").to_bytes())
        jsonschema.validate(message, schema)
        broken = {**message, "data": {**message["data"], "__wrong__": None}}
        broken["type"] = "something.else"
        try:
            jsonschema.validate(broken, schema)
        except jsonschema.ValidationError:
            pass
        else:
            raise AssertionError(f"schema of {sample.TYPE} accepts a wrong type")


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    assert (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir(), "run scripts/system-deps.sh"
    return subprocess.run(
        ["node", str(TOOL / "check.mjs"), str(path)], capture_output=True, text=True, timeout=120
    )


def test_the_official_asyncapi_parser_accepts_the_catalogue_with_no_diagnostic():
    """`@asyncapi/parser` (tools/asyncapi, installed by `make test`) resolves every reference
    from the document's root and validates the Kafka bindings: no error, no warning, and not
    even an info or hint (such as "not the latest AsyncAPI version")."""
    result = _check(DOCS / "asyncapi.json")
    diagnostics = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0 and not diagnostics, diagnostics or result.stderr


def test_the_parser_check_fails_on_warnings_alone(tmp_path):
    """The check is strict: a document the parser only warns about (an AsyncAPI 2 one with
    no servers, contact or licence: warnings, no error) fails it."""
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps({"asyncapi": "2.6.0", "info": {"title": "t", "version": "1"}, "channels": {}}))
    result = _check(path)
    severities = {json.loads(line)["severity"] for line in result.stdout.splitlines()}
    assert 0 not in severities and 1 in severities
    assert result.returncode == 1


def test_chronapilot_is_the_sender_of_every_topic_on_its_kafka_server():
    spec = docs.asyncapi()
    defaults = KafkaSettings.model_fields
    assert spec["servers"]["kafka"]["protocol"] == "kafka"
    assert spec["servers"]["kafka"]["host"] == defaults["bootstrap_servers"].default
    assert {op["action"] for op in spec["operations"].values()} == {"send"}
    channels = {c["bindings"]["kafka"]["topic"]: c for c in spec["channels"].values()}
    assert set(channels) == {topic_name(defaults["topic_prefix"].default, t) for t in Topic}
    for channel in channels.values():
        assert channel["bindings"]["kafka"]["partitions"] == defaults["topic_partitions"].default
        assert channel["bindings"]["kafka"]["replicas"] == defaults["replication_factor"].default


def test_the_documented_key_is_the_shape_of_a_connection_id():
    spec = docs.asyncapi()
    for message in spec["components"]["messages"].values():
        key = message["bindings"]["kafka"]["key"]
        jsonschema.validate(new_id("con"), key)
        for wrong in ["con_" + "i" * 26, new_id("usr"), new_id("con") + "0", new_id("con").upper()]:
            assert not is_valid_id(wrong, "con")
            try:
                jsonschema.validate(wrong, key)
            except jsonschema.ValidationError:
                continue
            raise AssertionError(f"{wrong} passes as a connection id")
