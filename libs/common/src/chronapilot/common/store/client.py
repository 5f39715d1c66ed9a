"""The MongoDB connection: connect with a retry budget, transactions, error translation.

Everything below ChronaPilot's repositories speaks PyMongo's asyncio API
(:class:`pymongo.AsyncMongoClient`); PyMongo's exceptions are translated here, once, into
:mod:`chronapilot.common.errors` so callers handle meanings, not driver types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from pymongo.uri_parser import parse_uri

from chronapilot.common.backoff import Backoff, retry_until
from chronapilot.common.errors import ChronaPilotError, Conflict, StartupError, StoreError
from chronapilot.common.logging import get_logger
from chronapilot.common.settings import MongoSettings

T = TypeVar("T")
Document = dict[str, Any]
#: A MongoDB session, as callers above the store pass it along (they never import PyMongo).
Session = AsyncClientSession
log = get_logger(__name__)


def describe_hosts(uri: str) -> str:
    """The hosts of a MongoDB URI, without credentials: safe to print."""
    try:
        nodes = parse_uri(uri, validate=False, warn=False)["nodelist"]
    except Exception:  # noqa: BLE001 - only used to describe a URI in an error message
        return "(unparseable URI)"
    return ",".join(f"{host}:{port}" for host, port in nodes)


@contextmanager
def translate_errors(session: AsyncClientSession | None = None) -> Iterator[None]:
    """Re-raise PyMongo errors as ChronaPilot errors: a duplicate key as :class:`Conflict`; an
    unreachable server, an operation past its ``timeoutMS`` (``NetworkTimeout``,
    ``ExecutionTimeout``, ``WTimeoutError``: every error whose ``timeout`` is true; code
    ``store_timeout``) or a transient failure as :class:`StoreError` (worth retrying); any other
    driver error as a :class:`ChronaPilotError` coded ``store_failed``.

    Within a transaction (``session`` in one), an error the transaction may be retried on
    passes through untranslated: the transaction's runner (:meth:`Store.in_transaction`)
    retries the whole transaction on it, and translates what is left.
    """
    try:
        yield
    except PyMongoError as exc:
        if (
            session is not None
            and session.in_transaction
            and exc.has_error_label("TransientTransactionError")
        ):
            raise
        raise _translated(exc) from exc


def _translated(exc: PyMongoError) -> ChronaPilotError:
    if isinstance(exc, DuplicateKeyError):
        return Conflict(f"duplicate key: {exc.details.get('keyValue') if exc.details else ''}")
    if isinstance(exc, ServerSelectionTimeoutError):
        return StoreError(f"MongoDB unreachable: {exc}")
    if exc.timeout:
        return StoreError(f"MongoDB operation timed out ({type(exc).__name__})", code="store_timeout")
    if isinstance(exc, ConnectionFailure):
        return StoreError(f"MongoDB unreachable: {exc}")
    if isinstance(exc, OperationFailure) and exc.has_error_label("TransientTransactionError"):
        return StoreError(f"transient MongoDB error: {exc}")
    return ChronaPilotError(f"MongoDB error: {exc}", code="store_failed")


class Store:
    """An open MongoDB client and ChronaPilot's database."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client[database]

    @classmethod
    async def connect(cls, settings: MongoSettings, *, budget_s: float) -> Store:
        """Connect and ping, retrying for ``budget_s``; raises :class:`StartupError` past it."""
        timeout_ms = int(settings.timeout_s * 1000)
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            timeoutMS=int(settings.operation_timeout_s * 1000),
            tz_aware=True,
            appname="chronapilot",
        )

        async def ping() -> None:
            await client.admin.command("ping")

        def retry(exc: BaseException, delay: float) -> None:
            log.warning(
                "mongodb.unreachable",
                hosts=describe_hosts(settings.uri),
                error=str(exc),
                retry_in_s=round(delay, 2),
            )

        try:
            await retry_until(
                ping,
                deadline_s=budget_s,
                backoff=Backoff(base_s=0.25, cap_s=5.0),
                should_retry=lambda exc: isinstance(exc, PyMongoError),
                on_retry=retry,
            )
        except PyMongoError as exc:
            await client.close()
            raise StartupError(
                f"cannot reach MongoDB at {describe_hosts(settings.uri)} after {budget_s:g}s: "
                f"{type(exc).__name__}"
            ) from None
        return cls(client, settings.database)

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    async def in_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """Run ``work(session)`` in one transaction, retried on transient errors."""
        with translate_errors():
            async with self.client.start_session() as session:
                return await session.with_transaction(work)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncClientSession]:
        async with self.client.start_session() as session:
            yield session

    async def close(self) -> None:
        await self.client.close()
