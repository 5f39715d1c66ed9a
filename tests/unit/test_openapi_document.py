"""The OpenAPI document as clients' code generators read it: a discriminated union's members
require their discriminator, and every error code an operation can answer is documented."""

from __future__ import annotations

from chronapilot.api.openapi import build
from chronapilot.api.routes import OPERATIONS
from chronapilot.api.webhook_schemas import WEBHOOKS

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
