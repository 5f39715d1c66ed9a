"""Generate the public event catalogue for subscribers: ``docs/events/``.

``python -m chronapilot.common.bus.docs docs/events`` (``make docs``) writes:

- ``asyncapi.json``: an AsyncAPI 3.1 document for subscribers (channels = topics, one ``send``
  operation per topic since ChronaPilot publishes them all, messages = event types, payloads =
  the envelope with the event's JSON Schema as ``data``, every schema under
  ``components.schemas``; the Kafka server, channel and message bindings). The official parser
  (``tools/asyncapi``) accepts it with no diagnostic at all: a test checks;
- ``README.md``: the same, for people.

Both come from the pydantic models in :mod:`chronapilot.common.bus.catalogue`; a test fails
when the committed files differ from what the models generate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from chronapilot.common.bus.catalogue import EVENT_TYPES, Event
from chronapilot.common.bus.consumer import (
    DEAD_LETTER_ERROR,
    DEAD_LETTER_GROUP,
    REPLAY_GROUP,
    REPLAY_LETTER,
    REPLAY_OFFSET,
    REPLAY_PARTITION,
    REPLAY_TOPIC,
    DeadLetter,
)
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.topics import TOPIC_DESCRIPTIONS, Topic, topic_name
from chronapilot.common.settings import KafkaSettings

#: The AsyncAPI version written: the latest the official parser (tools/asyncapi) knows.
ASYNCAPI_VERSION = "3.1.0"
#: The version of the Kafka bindings used (channel, message).
KAFKA_BINDINGS_VERSION = "0.5.0"

#: A connection id (:mod:`chronapilot.common.ids`: 26 characters of lower-case Crockford base32).
CONNECTION_ID_PATTERN = "^con_[0-9abcdefghjkmnpqrstvwxyz]{26}$"

#: The headers of a replayed message (:mod:`chronapilot.common.bus.replay`).
REPLAY_HEADERS = {
    REPLAY_GROUP: "The consumer group the replay is for; every other group skips the message.",
    REPLAY_LETTER: "The dead letter replayed (dlq_…).",
    REPLAY_TOPIC: "The topic the message was first consumed from.",
    REPLAY_PARTITION: "Its partition there (decimal).",
    REPLAY_OFFSET: "Its offset there (decimal).",
}
#: The headers of a dead-letter message (:class:`chronapilot.common.bus.ConsumerRunner`).
DEAD_LETTER_HEADERS = {
    DEAD_LETTER_GROUP: "The consumer group that gave up on the message.",
    DEAD_LETTER_ERROR: "The type of the error it last failed with.",
}

_SERVER = "kafka"
_DEFAULTS = KafkaSettings.model_fields
_PREFIX = str(_DEFAULTS["topic_prefix"].default)


def _message_name(event: type[Event]) -> str:
    return event.TYPE.replace(".", "_")


def _channel_key(topic: Topic) -> str:
    return topic.value.replace(".", "_")


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def event_schema(event: type[Event]) -> dict[str, Any]:
    """The JSON Schema of the whole message of ``event``: the envelope with typed ``data``."""
    envelope = Envelope.model_json_schema()
    data = event.model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    properties = dict(envelope["properties"])
    properties["type"] = {**properties["type"], "const": event.TYPE}
    properties["version"] = {**properties["version"], "const": event.VERSION}
    properties["data"] = data
    schema: dict[str, Any] = {
        **envelope,
        "title": event.__name__,
        "description": (event.__doc__ or "").strip(),
        "properties": properties,
        "required": ["id", "type", "version", "occurred_at", "connection_id", "data"],
    }
    if defs:
        schema["$defs"] = defs
    return schema


class _Schemas:
    """``components.schemas``: every schema of the document, referenced from where it is used
    (an AsyncAPI document resolves ``#/…`` from its root, so a schema's own ``#/$defs/…``
    would point nowhere)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        """Keep ``schema`` (and its ``$defs``) under ``name``; return a reference to it."""
        for def_name, definition in schema.pop("$defs", {}).items():
            self._keep(def_name, definition)
        self._keep(name, schema)
        return _ref("components", "schemas", name)

    def _keep(self, name: str, schema: dict[str, Any]) -> None:
        pointed = _point(schema)
        if self.schemas.setdefault(name, pointed) != pointed:
            raise ValueError(f"two different schemas are named {name}")


def _point(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/")
            if key == "$ref" and isinstance(value, str)
            else _point(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_point(item) for item in node]
    return node


def _string_headers(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in headers.items()},
        "required": list(headers),
    }


def _key_binding(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "pattern": CONNECTION_ID_PATTERN, "description": description},
            "bindingVersion": KAFKA_BINDINGS_VERSION,
        }
    }


def _event_message(event: type[Event], schemas: _Schemas) -> dict[str, Any]:
    data = event.model_json_schema()
    envelope = event_schema(event)
    envelope["properties"]["data"] = schemas.add(event.__name__, data)
    return {
        "name": event.TYPE,
        "title": event.__name__,
        "summary": (event.__doc__ or event.TYPE).strip().splitlines()[0],
        "description": f"`{event.TYPE}` version {event.VERSION}: the envelope, with `data` as "
        f"`{event.__name__}`.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "const": event.TYPE, "description": "The envelope's `type`."},
                "version": {
                    "type": "string",
                    "const": str(event.VERSION),
                    "description": "The envelope's `version`, as a decimal string.",
                },
            },
            "required": ["type", "version"],
        },
        "correlationId": _ref("components", "correlationIds", "connection"),
        "bindings": _key_binding("The connection id (the envelope's `connection_id`)."),
        "payload": schemas.add(f"{event.__name__}Message", envelope),
    }


def _dead_letter_message(schemas: _Schemas) -> dict[str, Any]:
    return {
        "name": "dead_letter",
        "title": "DeadLetter",
        "summary": "A message a consumer group gave up on, with the error.",
        "description": "Published by the consumer group that failed on the message, with the "
        "original key (a connection id, absent when the original had none).",
        "contentType": "application/json",
        "headers": _string_headers(DEAD_LETTER_HEADERS),
        "bindings": _key_binding("The original message's key: its connection id."),
        "payload": schemas.add("DeadLetter", DeadLetter.model_json_schema()),
    }


def _replay_message() -> dict[str, Any]:
    return {
        "name": "replay",
        "title": "Replay",
        "summary": "A dead letter sent back to the one consumer group that failed on it.",
        "description": "Published by `chronapilot dlq replay`. The key and value are the original "
        "message's, byte for byte; consumers of every other group skip it.",
        "contentType": "application/json",
        "headers": _string_headers(REPLAY_HEADERS),
        "bindings": _key_binding("The original message's key: its connection id."),
        "payload": {
            "description": "The original message's value: the envelope of an event of "
            "`original_topic` (or, for a message that could not be parsed, the same bytes)."
        },
    }


def _channel(topic: Topic, messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": "{prefix}." + topic.value,
        "title": topic.value,
        "description": TOPIC_DESCRIPTIONS[topic],
        "servers": [_ref("servers", _SERVER)],
        "parameters": {"prefix": _ref("components", "parameters", "prefix")},
        "messages": {name: _ref("components", "messages", name) for name in messages},
        "bindings": {
            "kafka": {
                "topic": topic_name(_PREFIX, topic),
                "partitions": _DEFAULTS["topic_partitions"].default,
                "replicas": _DEFAULTS["replication_factor"].default,
                "bindingVersion": KAFKA_BINDINGS_VERSION,
            }
        },
    }


def _operation(topic: Topic, messages: dict[str, Any]) -> dict[str, Any]:
    key = _channel_key(topic)
    return {
        "action": "send",
        "channel": _ref("channels", key),
        "title": f"Publish on {topic.value}",
        "summary": f"ChronaPilot publishes on `<prefix>.{topic.value}`; subscribe to it with "
        "your own consumer group.",
        "messages": [_ref("channels", key, "messages", name) for name in messages],
    }


def _topic_messages(topic: Topic, schemas: _Schemas) -> dict[str, Any]:
    messages = {_message_name(e): _event_message(e, schemas) for e in EVENT_TYPES if e.TOPIC is topic}
    if topic is Topic.DEAD_LETTER:
        messages["dead_letter"] = _dead_letter_message(schemas)
    if topic is Topic.REPLAY:
        messages["replay"] = _replay_message()
    return messages


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI document of every topic ChronaPilot publishes (the defaults of
    :class:`~chronapilot.common.settings.KafkaSettings` stand for a deployment's values)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas = _Schemas()
    for topic in Topic:
        topic_messages = _topic_messages(topic, schemas)
        messages.update(topic_messages)
        channels[_channel_key(topic)] = _channel(topic, topic_messages)
        operations[f"send_{_channel_key(topic)}"] = _operation(topic, topic_messages)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:chronapilot:events",
        "info": {
            "title": "ChronaPilot events",
            "version": "1.0.0",
            "description": "Kafka topics and event types published by ChronaPilot. Every "
            "message is a JSON envelope keyed by connection id; delivery is at least once, "
            "so deduplicate on the envelope `id`.",
            "tags": [{"name": "events", "description": "Facts about connections."}],
        },
        "defaultContentType": "application/json",
        "servers": {
            _SERVER: {
                "host": str(_DEFAULTS["bootstrap_servers"].default),
                "protocol": "kafka",
                "title": "ChronaPilot's Kafka",
                "description": "The Kafka-protocol broker ChronaPilot publishes to: "
                "`KAFKA_BOOTSTRAP_SERVERS` (the host here is its default). Every topic name "
                "starts with `CHRONAPILOT_KAFKA_TOPIC_PREFIX` (default "
                f"`{_PREFIX}`): the channel parameter `prefix`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": dict(sorted(schemas.schemas.items())),
            "parameters": {
                "prefix": {
                    "description": "The topic prefix: `CHRONAPILOT_KAFKA_TOPIC_PREFIX` of the deployment.",
                    "default": _PREFIX,
                    "examples": [_PREFIX],
                }
            },
            "correlationIds": {
                "connection": {
                    "description": "The connection the event concerns, also the message key: "
                    "one connection's events arrive in order on each topic. The envelope `id` "
                    "identifies the event itself (deduplicate on it).",
                    "location": "$message.payload#/connection_id",
                }
            },
        },
    }


def markdown() -> str:
    lines = [
        "# ChronaPilot events",
        "",
        "<!-- Generated by `make docs` from chronapilot.common.bus.catalogue. Do not edit. -->",
        "",
        "ChronaPilot publishes facts about connections on Kafka. Subscribe to the topics below "
        "with any Kafka client, in a consumer group of your own (not one of ChronaPilot's "
        "`<prefix>.sync-worker`, `<prefix>.token-refresher`, … groups). The machine-readable form "
        f"is [asyncapi.json](asyncapi.json) (AsyncAPI {ASYNCAPI_VERSION}, checked by the official "
        "`@asyncapi/parser` in the test suite with no error, warning or hint): one `send` "
        "operation per topic (ChronaPilot is the sender), the Kafka server, Kafka bindings "
        f"(version {KAFKA_BINDINGS_VERSION}) and every schema under `components.schemas`.",
        "",
        "## Conventions",
        "",
        "- The broker is the deployment's `KAFKA_BOOTSTRAP_SERVERS` (default "
        f"`{_DEFAULTS['bootstrap_servers'].default}`).",
        "- Topic names are `<prefix>.<name>.v1`; the prefix is `CHRONAPILOT_KAFKA_TOPIC_PREFIX` "
        f"(default `{_PREFIX}`), the channel parameter `prefix` in the AsyncAPI document. Every "
        "service creates the topics it misses at start, with `CHRONAPILOT_KAFKA_TOPIC_PARTITIONS` "
        f"partitions (default {_DEFAULTS['topic_partitions'].default}) and "
        "`CHRONAPILOT_KAFKA_REPLICATION_FACTOR` replicas (default "
        f"{_DEFAULTS['replication_factor'].default}): the channel bindings.",
        "- The key of every message is the connection id (`con_` and 26 characters of lower-case "
        "Crockford base32; the message binding `key`): one connection's events are ordered. "
        "The AsyncAPI `correlationId` of every event is the envelope's `connection_id`.",
        "- The value is a JSON envelope: `id` (unique per event; deduplicate on it: delivery is at "
        "least once), `type`, `version`, `occurred_at` (UTC), `connection_id`, `data`.",
        "- Headers `type` and `version` repeat the envelope's, for routing without parsing.",
        "- Adding an optional field to `data` keeps the version; any other change bumps it. "
        "Ignore fields you don't know.",
        "",
        "## Topics",
        "",
        "| topic | events | what |",
        "| --- | --- | --- |",
    ]
    for topic in Topic:
        events = [e.TYPE for e in EVENT_TYPES if e.TOPIC is topic] or [
            "replays" if topic is Topic.REPLAY else "dead letters"
        ]
        lines.append(
            f"| `<prefix>.{topic.value}` | {', '.join(f'`{e}`' for e in events)} | "
            f"{TOPIC_DESCRIPTIONS[topic]} |"
        )
    lines += ["", "## Event types", ""]
    for event in EVENT_TYPES:
        lines += [
            f"### `{event.TYPE}` (version {event.VERSION})",
            "",
            (event.__doc__ or "").strip(),
            "",
            f"Topic: `<prefix>.{event.TOPIC.value}`. Schema of `data`:",
            "",
            "```json",
            json.dumps(event.model_json_schema(), indent=2, sort_keys=True),
            "```",
            "",
        ]
    lines += [
        "## Dead letters",
        "",
        "A message a consumer group could not handle after bounded retries (or could not "
        "parse) is published to `<prefix>.deadletter.v1` with the same key, these headers",
        "",
        *(f"- `{name}`: {text}" for name, text in DEAD_LETTER_HEADERS.items()),
        "",
        "and this value:",
        "",
        "```json",
        json.dumps(DeadLetter.model_json_schema(), indent=2, sort_keys=True),
        "```",
        "",
        "Each group also holds its dead letters in MongoDB for operators (`chronapilot dlq list`). "
        "`chronapilot dlq replay ID --group G` publishes the original message (same key and value) "
        "to `<prefix>.replay.v1` with these headers; only group `G` handles it, with its normal "
        "handler:",
        "",
        *(f"- `{name}`: {text}" for name, text in REPLAY_HEADERS.items()),
        "",
    ]
    return "\n".join(lines)


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        directory / "asyncapi.json": json.dumps(asyncapi(), indent=2, sort_keys=True) + "\n",
        directory / "README.md": markdown(),
    }
    for path, text in files.items():
        path.write_text(text)
    return list(files)


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(written)
