"""The base of every MongoDB document model: ``id`` stored as ``_id``, strict fields."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field


class StoredModel(BaseModel):
    """A MongoDB document. ``to_mongo()`` / ``from_mongo()`` convert at the store boundary."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id")

    def to_mongo(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python")

    @classmethod
    def from_mongo(cls, raw: dict[str, Any]) -> Self:
        return cls.model_validate(raw)
