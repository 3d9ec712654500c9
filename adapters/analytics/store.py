"""Where analytics rows land: embedded ClickHouse (chdb) or a ClickHouse server over HTTP.

Errors::

    AnalyticsStoreError      anything the engine or the connection refused; the batch was
                             not (or not knowably) written, so callers retry it
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from adapters.analytics.migration import Migration, ensure_table
from adapters.analytics.schema import (
    COLUMNS,
    DEFAULT_DATABASE,
    INSERT_FORMAT,
    EncodedBatch,
    encode,
    insert_statement,
    qualified_table,
    stored_event_ids_params,
    stored_event_ids_sql,
)
from domain.analytics import AnalyticsEvent


class AnalyticsStoreError(Exception):
    """The store refused or could not be reached; the batch must be retried."""


class AnalyticsStore(Protocol):
    """Synchronous on purpose: the batcher and the sink call it from a worker thread.

    Opening a store creates the table, or rebuilds an older one (``migration``).
    """

    def insert(self, events: Sequence[AnalyticsEvent]) -> None: ...

    def insert_encoded(self, batch: EncodedBatch) -> None:
        """``insert`` of a batch already encoded (and, once encoded, retried as it is)."""
        ...

    def stored_event_ids(self, events: Sequence[AnalyticsEvent]) -> set[str]:
        """The ids among ``events`` that already have a row."""
        ...

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class ChdbStore:
    """Embedded ClickHouse on a data directory.

    chdb lets one process open one data directory at a time (a second path in the same process
    is refused until the first is closed), so a process holds one ChdbStore per path and closes
    it before opening another.
    """

    def __init__(self, path: Path, *, database: str = DEFAULT_DATABASE) -> None:
        # The engine runs inside a bid-serving process: its insert threads take the lowest
        # priority (nice 19), so the bids on the same core go first. Under wrk at 80 % of the
        # peak rate this took p99 from 9-11 ms to 7-8 ms in `up`. ClickHouse leaves its pool
        # threads at that priority afterwards, so reports queried here may run niced too: in
        # this process they come second to bids anyway.
        self._insert_prefix = (
            f"{insert_statement(database)} "
            "SETTINGS os_thread_priority = 19, insert_deduplication_token = "
        )
        self._stored_ids_sql = stored_event_ids_sql(database)
        path.mkdir(parents=True, exist_ok=True)
        # chdb sessions are thread-safe, but inserts come from worker threads while reports and
        # tests query: one lock keeps statements and per-session settings from interleaving.
        self._lock = threading.Lock()
        try:
            self._session: Any = open_chdb_session(path)
        except RuntimeError as exc:
            raise AnalyticsStoreError(f"cannot open chdb at {path}: {exc}") from exc
        try:
            # Bare DateTime values (now(), toDateTime(...)) then read back as UTC, like the
            # table's own columns.
            self._session.query("SET session_timezone = 'UTC'")
            self.migration: Migration | None = ensure_table(self.query, self._command, database)
        except (RuntimeError, AnalyticsStoreError) as exc:
            # Closing frees the directory: this process could not open another one otherwise.
            self.close()
            raise AnalyticsStoreError(f"cannot create the analytics table: {exc}") from exc

    def insert(self, events: Sequence[AnalyticsEvent]) -> None:
        if events:
            self.insert_encoded(encode(events))

    def insert_encoded(self, batch: EncodedBatch) -> None:
        if not batch.count:
            return
        statement = f"{self._insert_prefix}'{batch.token}'"
        with self._lock:
            session = self._open_session()
            try:
                # The payload goes to the engine as bytes, without a SQL string built around it.
                with session.send_insert(statement, INSERT_FORMAT) as inserter:
                    inserter.append(batch.payload)
                    inserter.finish()
            except RuntimeError as exc:
                raise AnalyticsStoreError(f"chdb insert of {batch.count} events: {exc}") from exc

    def stored_event_ids(self, events: Sequence[AnalyticsEvent]) -> set[str]:
        if not events:
            return set()
        params = {
            name: _chdb_parameter(value) for name, value in stored_event_ids_params(events).items()
        }
        return {str(row[0]) for row in self._query(self._stored_ids_sql, params)}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Runs ``sql`` (no FORMAT clause) and returns rows with Python values."""
        return self._query(sql, None)

    def _query(self, sql: str, params: dict[str, str] | None) -> list[tuple[Any, ...]]:
        with self._lock:
            session = self._open_session()
            try:
                result = session.query(sql, "JSONCompactEachRowWithNamesAndTypes", params=params)
            except RuntimeError as exc:
                raise AnalyticsStoreError(f"chdb query failed: {exc}") from exc
            body: bytes = result.bytes()
        return _rows_from_compact_json(body)

    def _command(self, sql: str) -> None:
        with self._lock:
            self._open_session().query(sql)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                session.close()

    def _open_session(self) -> Any:
        if self._session is None:
            raise AnalyticsStoreError("the chdb store is closed")
        return self._session


class ClickHouseHttpStore:
    """A ClickHouse server (cluster mode, ``CE_CLICKHOUSE_URL``) through clickhouse-connect.

    The URL is a clickhouse-connect DSN, so client options ride in its query string
    (``http://host:8123/?compress=false``).
    """

    def __init__(
        self,
        url: str,
        *,
        database: str = DEFAULT_DATABASE,
        connect_timeout_s: float = 5.0,
        send_receive_timeout_s: float = 30.0,
    ) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        self._errors: tuple[type[BaseException], ...] = (ClickHouseError, OSError)
        self._table = qualified_table(database)
        self._stored_ids_sql = stored_event_ids_sql(database)
        self._progress_interval_s = send_receive_timeout_s / 3
        try:
            self._client: Any = clickhouse_connect.get_client(
                dsn=url,
                connect_timeout=connect_timeout_s,
                send_receive_timeout=send_receive_timeout_s,
                # A server session serialises its queries and errors on overlap; nothing
                # here needs session state.
                autogenerate_session_id=False,
                # Timestamps come back UTC-aware, as ChdbStore returns them.
                tz_mode="aware",
            )
        except self._errors as exc:
            raise AnalyticsStoreError(f"cannot reach ClickHouse: {exc}") from exc
        try:
            self.migration: Migration | None = ensure_table(
                self.query, self._command, database, copy=self._long_command
            )
        except (*self._errors, AnalyticsStoreError) as exc:
            self._client.close()
            raise AnalyticsStoreError(f"cannot create the analytics table: {exc}") from exc

    def insert(self, events: Sequence[AnalyticsEvent]) -> None:
        if events:
            self.insert_encoded(encode(events))

    def insert_encoded(self, batch: EncodedBatch) -> None:
        if not batch.count:
            return
        try:
            # No lock: without a server session clickhouse-connect's client takes concurrent
            # calls, so reports are not queued behind inserts.
            self._client.raw_insert(
                self._table,
                column_names=COLUMNS,
                insert_block=batch.payload,
                fmt=INSERT_FORMAT,
                settings={"insert_deduplication_token": batch.token},
            )
        except self._errors as exc:
            raise AnalyticsStoreError(f"ClickHouse insert of {batch.count} events: {exc}") from exc

    def stored_event_ids(self, events: Sequence[AnalyticsEvent]) -> set[str]:
        if not events:
            return set()
        try:
            # Server-side binding: the ids travel as parameters, never inside the SQL text.
            result = self._client.query(
                self._stored_ids_sql, parameters=stored_event_ids_params(events)
            )
        except self._errors as exc:
            raise AnalyticsStoreError(f"ClickHouse lookup of stored events failed: {exc}") from exc
        return {str(row[0]) for row in result.result_rows}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            result = self._client.query(sql)
        except self._errors as exc:
            raise AnalyticsStoreError(f"ClickHouse query failed: {exc}") from exc
        return [tuple(row) for row in result.result_rows]

    def _command(self, sql: str) -> None:
        self._client.command(sql)

    def _long_command(self, sql: str) -> None:
        # A table copy can outlast the read timeout; progress headers keep bytes flowing on
        # the connection while the server works, so the timeout measures silence, not length.
        self._client.command(
            sql,
            transport_settings={
                "send_progress_in_http_headers": "1",
                "http_headers_progress_interval_ms": str(
                    max(1000, int(self._progress_interval_s * 1000))
                ),
            },
        )

    def close(self) -> None:
        self._client.close()


def _chdb_parameter(value: object) -> str:
    """A query parameter as the ClickHouse literal chdb parses it."""
    if isinstance(value, list):
        return "[" + ",".join(_chdb_parameter(item) for item in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no chdb literal for {type(value).__name__}")


def open_chdb_session(path: Path) -> Any:
    """A chdb session on ``path`` (resolved: chdb compares paths as text)."""
    from chdb.session import Session

    factory: Any = Session  # chdb's functions carry no annotations
    return factory(str(path.resolve()))


def open_store(
    clickhouse_url: str | None,
    clickhouse_path: Path,
    *,
    database: str = DEFAULT_DATABASE,
) -> AnalyticsStore:
    """A ClickHouse server when a URL is configured, otherwise chdb in ``clickhouse_path``."""
    if clickhouse_url:
        return ClickHouseHttpStore(clickhouse_url, database=database)
    return ChdbStore(clickhouse_path, database=database)


# --- chdb result decoding -------------------------------------------------------------------

_WRAPPER = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
_TIMEZONE = re.compile(r"'([^']+)'\)$")


def _rows_from_compact_json(body: bytes) -> list[tuple[Any, ...]]:
    lines = body.splitlines()
    if len(lines) < 2:
        return []
    types: list[str] = orjson.loads(lines[1])
    converters = [_converter(_unwrap(name)) for name in types]
    rows: list[tuple[Any, ...]] = []
    for line in lines[2:]:
        values = orjson.loads(line)
        rows.append(
            tuple(
                None if value is None else convert(value)
                for convert, value in zip(converters, values, strict=True)
            )
        )
    return rows


def _unwrap(type_name: str) -> str:
    while match := _WRAPPER.match(type_name):
        type_name = match.group(1)
    return type_name


def _converter(type_name: str) -> Any:
    # The JSON formats quote 64-bit integers and render dates as text; these give back the
    # Python values clickhouse-connect would, so both stores answer alike.
    if type_name.startswith(("Int", "UInt")):
        return int
    if type_name.startswith("Float"):
        return float
    if type_name == "Bool":
        return bool
    if type_name.startswith("DateTime"):
        zone_match = _TIMEZONE.search(type_name)
        zone_name = zone_match.group(1) if zone_match else "UTC"
        zone = UTC if zone_name in ("UTC", "Etc/UTC") else ZoneInfo(zone_name)

        def to_datetime(value: str) -> datetime:
            return datetime.fromisoformat(value).replace(tzinfo=zone)

        return to_datetime
    if type_name == "Date" or type_name == "Date32":
        return lambda value: datetime.fromisoformat(value).date()
    return lambda value: value
