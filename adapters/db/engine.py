"""One database, reached synchronously (migrations, bulk loads) and asynchronously (the rest).

Both engines come from one URL. SQLite (the embedded default) goes through ``sqlite3`` and
``aiosqlite``; PostgreSQL through psycopg 3 for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Several processes share one SQLite file in embedded mode (API, bidder, `campaign-express
# demo`): WAL lets readers run beside the one writer, and a writer waits for the lock instead
# of failing at once. WAL is a property of the file, set once by `Database`; the rest are
# per connection.
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_WAL_RETRY_S = 0.02
# Marks the async sessions that ``begin()`` hands out on SQLite: their transaction opens with
# BEGIN IMMEDIATE (see ``_SQLiteSessions``).
_SQLITE_WRITER = "campaign_express_sqlite_writer"

CONNECT_TIMEOUT_S = 10
POOL_TIMEOUT_S = 10.0
DEFAULT_STATEMENT_TIMEOUT_S = 30.0


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class UnsupportedDatabaseURLError(ValueError):
    """The URL names a database or driver we do not run on."""


@dataclass(frozen=True, slots=True)
class DatabaseURLs:
    backend: Backend
    sync: URL
    async_: URL


_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"}


def resolve_urls(url: str) -> DatabaseURLs:
    """The driver-qualified sync and async URLs for ``url``.

    Accepts ``sqlite:///path`` and ``postgresql://``, ``postgres://`` or
    ``postgresql+psycopg://``, with or without a driver already named.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise UnsupportedDatabaseURLError(f"not a database URL: {url!r}") from error
    if parsed.drivername in _POSTGRES_DRIVERS:
        psycopg = parsed.set(drivername="postgresql+psycopg")
        return DatabaseURLs(Backend.POSTGRESQL, psycopg, psycopg)
    if parsed.drivername in _SQLITE_DRIVERS:
        if not parsed.database or parsed.database == ":memory:":
            # The sync and async engines would each get a database of their own.
            raise UnsupportedDatabaseURLError("SQLite needs a file path: sqlite:////abs/path.db")
        return DatabaseURLs(
            Backend.SQLITE,
            parsed.set(drivername="sqlite"),
            parsed.set(drivername="sqlite+aiosqlite"),
        )
    raise UnsupportedDatabaseURLError(
        f"unsupported database {parsed.drivername!r}: use sqlite:/// or postgresql://"
    )


def _apply_sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _no_driver_begin(dbapi_connection: Any, _connection_record: Any) -> None:
    """Stop pysqlite beginning transactions itself: it does so lazily, at a transaction's
    first write statement, which leaves the reads before it outside; ``_begin`` does it."""
    dbapi_connection.isolation_level = None


def _begin(conn: Connection) -> None:
    """SQLAlchemy's recipe for pysqlite/aiosqlite ("Serializable isolation / Savepoints /
    Transactional DDL"), with BEGIN IMMEDIATE: a write transaction's lock is taken, and waited
    for by the busy handler, at BEGIN, so what it reads and writes is one atomic unit and it
    never fails upgrading a read snapshot to a write. Other transactions begin nothing: their
    statements run one by one, as pysqlite ran reads before (and the bid path's reads pay no
    extra round trip). Writes therefore go through ``Database.async_session.begin()``."""
    if conn.get_execution_options().get(_SQLITE_WRITER):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriteOutsideTransactionError(RuntimeError):
    """A write on SQLite outside ``Database.async_session.begin()``."""


def _refuse_stray_writes(
    conn: Connection,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    """Outside ``begin()`` no transaction is open (``_no_driver_begin``), so a write there would
    commit statement by statement, and skip the writers' queue: refuse it loudly instead."""
    if conn.get_execution_options().get(_SQLITE_WRITER):
        return
    if statement.lstrip().split(None, 1)[0].upper() in _WRITE_VERBS:
        raise WriteOutsideTransactionError(
            "SQLite writes go through Database.async_session.begin(): " + statement[:80]
        )


async def holds_write_lock(session: AsyncSession) -> bool:
    """Whether ``session``'s SQLite transaction began holding the write lock (a session from
    ``Database.async_session.begin()``): nothing more to do to have the database to itself."""
    connection = await session.connection()
    return bool(
        connection.sync_connection
        and connection.sync_connection.get_execution_options().get(_SQLITE_WRITER)
    )


class _WriterGate:
    """One write transaction at a time per event loop, in arrival order.

    SQLite has one write lock per file. Left to the busy handler, a process's own writers poll
    for it (sleeping between tries, first come not first served, each holding a pool
    connection and a thread) while the holder's statements wait their turn on the busy event
    loop; under load some waited past the busy timeout and failed with "database is locked".
    Queued here instead, they wait without polling, in order, and the busy timeout is left to
    contention with other processes. A task already inside a write transaction (or a task it
    started meanwhile) passes through, as before, rather than wait for itself for ever.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = (
            weakref.WeakKeyDictionary()
        )
        self._mine: ContextVar[object | None] = ContextVar("sqlite_writer", default=None)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        turn = self._locks.get(loop)
        if turn is None:
            turn = self._locks[loop] = _Turn()
        mine = self._mine.get()
        if mine is not None and mine is turn.holder:
            yield
            return
        async with turn.lock:
            turn.holder = object()
            reset = self._mine.set(turn.holder)
            try:
                yield
            finally:
                self._mine.reset(reset)
                turn.holder = None


class _Turn:
    __slots__ = ("holder", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.holder: object | None = None


class _SQLiteSessions(async_sessionmaker[AsyncSession]):
    """``begin()`` queues at the gate, then opens a session whose transaction begins
    IMMEDIATE; sessions made by calling the factory (reads) are left as they are."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self._gate = _WriterGate()

    def begin(self) -> Any:  # an async context manager giving the session, as the base's
        return self._serialised()

    @contextlib.asynccontextmanager
    async def _serialised(self) -> AsyncIterator[AsyncSession]:
        async with (
            self._gate.held(),
            self(execution_options={_SQLITE_WRITER: True}) as session,
            session.begin(),
        ):
            yield session


def _switch_to_wal(path: Path) -> None:
    """Put the file in WAL mode, waiting out other processes doing the same.

    Changing the journal mode needs the file to itself and SQLite does not wait for that
    (no busy handler), so processes starting together on a new file retry here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        else:
            if mode.lower() != "wal":
                raise RuntimeError(f"SQLite kept journal mode {mode!r} for {path}, not WAL")
            return
        finally:
            conn.close()
        time.sleep(_WAL_RETRY_S)


class Database:
    """Engines and sessions for one database URL.

    Engines are created on first use, so a process that only migrates never opens an async
    pool. A SQLite file is created (with its directory) and switched to WAL right away.
    ``statement_timeout_s`` bounds every PostgreSQL statement (None: no bound, for migrations
    that rewrite big tables); SQLite statements are bounded by the lock wait.
    """

    def __init__(
        self,
        url: str,
        *,
        statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
        pool_size: int = 10,
        echo: bool = False,
    ) -> None:
        self.urls = resolve_urls(url)
        self._statement_timeout_s = statement_timeout_s
        self._pool_size = pool_size
        self._echo = echo
        if self.urls.backend is Backend.SQLITE:
            database = self.urls.sync.database
            assert database is not None  # resolve_urls refuses SQLite URLs without a path
            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            _switch_to_wal(path)

    @property
    def backend(self) -> Backend:
        return self.urls.backend

    def _engine_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"echo": self._echo, "pool_timeout": POOL_TIMEOUT_S}
        if self.backend is Backend.SQLITE:
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            options["pool_size"] = self._pool_size
            return options
        server_options = ""
        if self._statement_timeout_s is not None:
            server_options = f"-c statement_timeout={round(self._statement_timeout_s * 1000)}"
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, "options": server_options}
        options["pool_size"] = self._pool_size
        # Connections idle longer than this may have been cut by a proxy or a server restart.
        options["pool_recycle"] = 1800
        return options

    @cached_property
    def sync_engine(self) -> Engine:
        engine = create_engine(self.urls.sync, **self._engine_options())
        if self.backend is Backend.SQLITE:
            event.listen(engine, "connect", _apply_sqlite_pragmas)
        return engine

    @cached_property
    def async_engine(self) -> AsyncEngine:
        engine = create_async_engine(self.urls.async_, **self._engine_options())
        if self.backend is Backend.SQLITE:
            event.listen(engine.sync_engine, "connect", _apply_sqlite_pragmas)
            event.listen(engine.sync_engine, "connect", _no_driver_begin)
            event.listen(engine.sync_engine, "begin", _begin)
            event.listen(engine.sync_engine, "before_cursor_execute", _refuse_stray_writes)
        return engine

    @cached_property
    def async_session(self) -> async_sessionmaker[AsyncSession]:
        """Call it for a session; ``async with db.async_session.begin()`` for a transaction.

        Every write goes through ``begin()``: on SQLite that queues the process's writers for
        the file's one write lock (``_WriterGate``); PostgreSQL needs nothing of the kind.
        """
        if self.backend is Backend.SQLITE:
            return _SQLiteSessions(self.async_engine)
        return async_sessionmaker(self.async_engine, expire_on_commit=False)

    async def dispose(self) -> None:
        """Close every pooled connection of the engines this object created."""
        if "async_engine" in self.__dict__:
            await self.async_engine.dispose()
        if "sync_engine" in self.__dict__:
            self.sync_engine.dispose()
