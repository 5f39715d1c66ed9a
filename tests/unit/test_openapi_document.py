"""The OpenAPI document as clients' code generators read it: a discriminated union's members
require their discriminator, every error code an operation can answer is documented, and so
is every customer webhook ChronaPilot sends."""

from __future__ import annotations

import re

from chronapilot.api.openapi import build
from chronapilot.api.routes import OPERATIONS
from chronapilot.api.webhook_schemas import WEBHOOKS
from chronapilot.common.ids import is_valid_id, new_id
from chronapilot.common.webhooks import EVENT_TYPES

DOCUMENT = build(OPERATIONS, server_url="http://api.invalid", webhooks=WEBHOOKS)
SCHEMAS = DOCUMENT["components"]["schemas"]


def test_every_member_of_a_discriminated_union_requires_the_discriminator():
    unions = [
        node
        for schema in SCHEMAS.values()
        for prop in schema.get("properties", {}).values()
        for node in (prop, prop.get("items", {}))
        if "discriminator" in node
    ]
    assert unions  # EventList.data: events or occurrences
    for union in unions:
        name = union["discriminator"]["propertyName"]
        for member in union["oneOf"]:
            schema = SCHEMAS[member["$ref"].rsplit("/", 1)[1]]
            assert name in schema.get("required", []), member["$ref"]


def test_both_operations_that_expand_series_document_window_too_dense():
    for path in ("/v1/events", "/v1/users/{id}/free_busy"):
        operation = DOCUMENT["paths"][path]["get"]
        assert "400" in operation["responses"]
        assert "`window_too_dense`" in operation["description"], path


def test_every_public_event_type_and_ping_is_documented_as_a_signed_webhook():
    hooks = DOCUMENT["webhooks"]
    assert list(hooks) == [*EVENT_TYPES, "ping"]
    expected_object = {"connection": "ConnectionObject", "calendar": "CalendarObject", "event": "EventObject"}
    expected_object |= {"sync": "SyncFailureObject", "ping": "PingObject"}
    for event_type, item in hooks.items():
        operation = item["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header" and p["required"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        body = SCHEMAS[
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        ]
        assert body["properties"]["type"]["const"] == event_type
        assert set(body["required"]) == {"type", "timestamp", "data"}
        data = SCHEMAS[body["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert {"object", "updated_at", "sequence"} <= set(data["required"])
        assert data["properties"]["object"]["$ref"].endswith("/" + expected_object[event_type.split(".")[0]])
        assert ("previous" in data["properties"]) == (event_type == "connection.updated")


def test_the_webhook_endpoint_operations_are_documented():
    paths = DOCUMENT["paths"]
    assert set(paths["/v1/webhook_endpoints"]) == {"get", "post"}
    assert set(paths["/v1/webhook_endpoints/{id}"]) == {"get", "patch", "delete"}
    created = paths["/v1/webhook_endpoints"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/WebhookEndpointWithSecretObject")
    assert "secret" not in SCHEMAS["WebhookEndpointObject"]["properties"]
    for path in ("/v1/webhook_endpoints/{id}/test", "/v1/webhook_deliveries/{id}/retry"):
        assert {"202", "404", "409"} <= set(paths[path]["post"]["responses"])


def test_a_path_id_pattern_admits_exactly_the_ids_the_server_accepts():
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["in"] != "path":
                    continue
                prefix = param["schema"]["pattern"][1:].split("_", 1)[0]
                pattern = re.compile(param["schema"]["pattern"])
                made = new_id(prefix)
                assert pattern.match(made) and is_valid_id(made, prefix), path
                for letter in "ilou":  # not in Crockford's alphabet: the server refuses them
                    wrong = made[:-1] + letter
                    assert not pattern.match(wrong) and not is_valid_id(wrong, prefix), path


def test_429_and_503_document_retry_after_and_post_answers_idempotent_replayed():
    for item in DOCUMENT["paths"].values():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in ("429", "503"):
                if status in responses:
                    assert responses[status]["headers"]["Retry-After"]["required"] is True
            success = next(r for s, r in responses.items() if s.startswith("2"))
            assert ("Idempotent-Replayed" in success["headers"]) == (method == "post")
