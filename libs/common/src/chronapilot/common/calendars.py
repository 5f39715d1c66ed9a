"""Compatibility for callers still holding a raw database: the mirror's calendars are
:class:`~chronapilot.common.store.calendars.Calendars` (``runtime.repos.calendars``)."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from chronapilot.common.providers.base import CalendarInfo
from chronapilot.common.store.calendars import Calendars
from chronapilot.common.store.client import Document, Session, Store


async def upsert_calendars(
    db: AsyncDatabase[Document],
    session: Session | None,
    *,
    connection_id: str,
    application_id: str,
    calendars: list[CalendarInfo],
    now: datetime,
) -> list[str]:
    """:meth:`Calendars.upsert_listed` over ``db`` (the API's activation, until it uses
    ``runtime.repos.calendars``)."""
    return await Calendars(Store(db.client, db.name)).upsert_listed(
        connection_id=connection_id,
        application_id=application_id,
        calendars=calendars,
        now=now,
        session=session,
    )
