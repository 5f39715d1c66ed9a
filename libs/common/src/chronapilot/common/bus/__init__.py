"""The event bus: envelopes, the catalogue, topics, producer, consumer runner and the outbox."""

from chronapilot.common.bus.admin import ensure_topics
from chronapilot.common.bus.catalogue import CATALOGUE, Event, parse, parse_as, wrap
from chronapilot.common.bus.consumer import ConsumerRunner, DeadLetter, Handler
from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.outbox import OutboxRelay, emit
from chronapilot.common.bus.producer import EventProducer
from chronapilot.common.bus.topics import Topic, topic_name

__all__ = [
    "CATALOGUE",
    "ConsumerRunner",
    "DeadLetter",
    "Envelope",
    "Event",
    "EventProducer",
    "Handler",
    "OutboxRelay",
    "Topic",
    "emit",
    "ensure_topics",
    "parse",
    "parse_as",
    "topic_name",
    "wrap",
]
