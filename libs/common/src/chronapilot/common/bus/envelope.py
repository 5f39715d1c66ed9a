"""The envelope every Kafka message travels in: typed, versioned, keyed by connection.

The value on the wire is the envelope's JSON; the key is ``connection_id``. ``id`` is unique
per event and is what consumers deduplicate on (delivery is at least once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chronapilot.common.ids import new_id


class Envelope(BaseModel):
    """One event on the bus."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(default_factory=lambda: new_id("msg"), description="Unique event id (dedupe).")
    type: str = Field(description="Event type, past tense: `connection.activated`.")
    version: int = Field(ge=1, description="Schema version of `data` for this type.")
    occurred_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When it happened (UTC)."
    )
    connection_id: str = Field(description="The connection it concerns; also the Kafka key.")
    data: dict[str, Any] = Field(default_factory=dict, description="The event's payload.")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)

    @property
    def key(self) -> bytes:
        return self.connection_id.encode()
