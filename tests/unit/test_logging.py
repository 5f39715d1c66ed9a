import json
import logging

import structlog

from chronapilot.common.logging import REDACTED, bind_context, configure_logging, get_logger

SECRETS = ["ya29.a0AfH6SMB", "1//0gLrefresh", "4/0AX4XfWcode", "hunter2-app-pw", "cpk_test_Zk9x2mQ"]


def capture(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_secrets_are_redacted_wherever_they_appear_in_an_event(capsys):
    configure_logging("DEBUG", "json", service="test")
    log = get_logger("t")
    log.info(
        "token.exchange",
        access_token=SECRETS[0],
        response={"refresh_token": SECRETS[1], "expires_in": 3599},
        url=f"https://example.test/cb?code={SECRETS[2]}&state=abc",
        headers={"Authorization": f"Bearer {SECRETS[0]}", "Accept": "application/json"},
        form=[{"password": SECRETS[3]}],
        api_key=SECRETS[4],
        note=f"key {SECRETS[4]} used",
    )
    logging.getLogger("aiohttp.access").info("GET /oauth/google/callback?code=%s HTTP/1.1", SECRETS[2])
    text = capsys.readouterr().out
    for secret in SECRETS:
        assert secret not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert events[0]["response"]["expires_in"] == 3599
    assert events[0]["headers"]["Accept"] == "application/json"
    assert "state=abc" in events[0]["url"]
    assert REDACTED in events[1]["event"]


def test_context_ids_are_bound_to_every_line_inside_the_block(capsys):
    configure_logging("INFO", "json", service="test")
    log = get_logger("t")
    with bind_context(request_id="req_1", connection_id="con_1"):
        log.info("inside")
    log.info("outside")
    inside, outside = capture(capsys)
    assert inside["request_id"] == "req_1" and inside["connection_id"] == "con_1"
    assert "connection_id" not in outside
    assert inside["service"] == "test"
    structlog.contextvars.clear_contextvars()
