"""Generate the public event catalogue for subscribers: ``docs/events/``.

``python -m chronapilot.common.bus.docs docs/events`` (``make docs``) writes:

- ``asyncapi.json``: an AsyncAPI 3.0 document (channels = topics, messages = event types,
  payloads = the envelope with the event's JSON Schema as ``data``);
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
from chronapilot.common.bus.consumer import DeadLetter
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.topics import TOPIC_DESCRIPTIONS, Topic

#: The headers of a replayed message (:mod:`chronapilot.common.bus.replay`).
REPLAY_HEADERS = {
    "group_id": "The consumer group the replay is for; every other group skips the message.",
    "dead_letter_id": "The dead letter replayed (dlq_…).",
    "original_topic": "The topic the message was first consumed from.",
    "original_partition": "Its partition there.",
    "original_offset": "Its offset there.",
}


def _message_name(event: type[Event]) -> str:
    return event.TYPE.replace(".", "_")


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


def _hoist_defs(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` moved to the document's ``components.schemas`` (``schemas``)
    and its references pointed there: an AsyncAPI document resolves ``#/…`` from its root."""
    schemas.update(schema.pop("$defs", {}))

    def point(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: value.replace("#/$defs/", "#/components/schemas/")
                if key == "$ref" and isinstance(value, str)
                else point(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [point(item) for item in node]
        return node

    for name, definition in list(schemas.items()):
        schemas[name] = point(definition)
    return dict(point(schema))


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic in Topic:
        events = [e for e in EVENT_TYPES if e.TOPIC is topic]
        channel: dict[str, Any] = {
            "address": "{prefix}." + topic.value,
            "description": TOPIC_DESCRIPTIONS[topic],
            "parameters": {
                "prefix": {"description": "CHRONAPILOT_KAFKA_TOPIC_PREFIX", "default": "chronapilot"}
            },
            "messages": {},
        }
        for event in events:
            name = _message_name(event)
            messages[name] = {
                "name": event.TYPE,
                "title": event.__name__,
                "summary": (event.__doc__ or event.TYPE).strip().splitlines()[0],
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "const": event.TYPE},
                        "version": {"type": "string", "const": str(event.VERSION)},
                    },
                },
                "bindings": {"kafka": {"key": {"type": "string", "description": "The connection id."}}},
                "payload": _hoist_defs(event_schema(event), schemas),
            }
            channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        if topic is Topic.DEAD_LETTER:
            messages["dead_letter"] = {
                "name": "dead_letter",
                "title": "DeadLetter",
                "summary": "A message a consumer group gave up on, with the error.",
                "contentType": "application/json",
                "payload": _hoist_defs(DeadLetter.model_json_schema(), schemas),
            }
            channel["messages"]["dead_letter"] = {"$ref": "#/components/messages/dead_letter"}
        if topic is Topic.REPLAY:
            messages["replay"] = {
                "name": "replay",
                "title": "Replay",
                "summary": "A dead letter sent back to the one consumer group that failed on it.",
                "description": "The value and key are the original message's. Consumers of other "
                "groups skip it.",
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string", "description": text} for name, text in REPLAY_HEADERS.items()
                    },
                    "required": list(REPLAY_HEADERS),
                },
                "payload": {"type": "object", "description": "The original message (an envelope)."},
            }
            channel["messages"]["replay"] = {"$ref": "#/components/messages/replay"}
        key = topic.value.replace(".", "_")
        channels[key] = channel
        operations[f"receive_{key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"Subscribe to {topic.value}.",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ChronaPilot events",
            "version": "1.0.0",
            "description": "Kafka topics and event types published by ChronaPilot. Every "
            "message is a JSON envelope keyed by connection id; delivery is at least once, "
            "so deduplicate on the envelope `id`.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def markdown() -> str:
    lines = [
        "# ChronaPilot events",
        "",
        "<!-- Generated by `make docs` from chronapilot.common.bus.catalogue. Do not edit. -->",
        "",
        "ChronaPilot publishes facts about connections on Kafka. Subscribe to the topics below "
        "with any Kafka client. The machine-readable form is [asyncapi.json](asyncapi.json) "
        "(AsyncAPI 3.0).",
        "",
        "## Conventions",
        "",
        "- Topic names are `<prefix>.<name>.v1`; the prefix is `CHRONAPILOT_KAFKA_TOPIC_PREFIX` "
        "(default `chronapilot`).",
        "- The key of every message is the connection id: one connection's events are ordered.",
        "- The value is a JSON envelope: `id` (unique; deduplicate on it: delivery is at least "
        "once), `type`, `version`, `occurred_at` (UTC), `connection_id`, `data`.",
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
        "parse) is published to `<prefix>.deadletter.v1` with the same key, headers "
        "`group_id` and `error_type`, and this value:",
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
