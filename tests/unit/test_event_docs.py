"""The public event catalogue (docs/events) is generated from the models and stays in step."""

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from chronapilot.common.bus import catalogue, docs
from chronapilot.common.bus.catalogue import wrap

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
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


def test_the_official_asyncapi_parser_accepts_the_catalogue_with_no_error():
    """`@asyncapi/parser` (tools/asyncapi, installed by `make test`) resolves every reference
    from the document's root: a schema's own `#/$defs/…` would be an invalid-ref error."""
    tool = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"
    assert (tool / "node_modules" / "@asyncapi" / "parser").is_dir(), "run scripts/system-deps.sh"
    result = subprocess.run(
        ["node", str(tool / "check.mjs"), str(DOCS / "asyncapi.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    diagnostics = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [d for d in diagnostics if d["severity"] == 0]
    assert result.returncode == 0 and not errors, errors or result.stderr
