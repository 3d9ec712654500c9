"""Bringing ``analytics_events`` to the current definition when a store opens.

``CREATE TABLE IF NOT EXISTS`` leaves an older table as it was, so a table whose engine or keys
differ (the first version was a ReplacingMergeTree keyed on event ids) is rebuilt:

1. a new table ``analytics_events_migrating`` is created with the current definition;
2. the rows are copied into it with ``INSERT … SELECT`` (``FINAL`` on a ReplacingMergeTree, so
   copies not yet merged away arrive once); chdb copied ~5 million rows a second here;
3. ``EXCHANGE TABLES`` swaps the two names atomically;
4. the old table is renamed ``analytics_events_v1_<UTC time>`` and kept: nothing is deleted, and
   the WARNING says how to drop it once the copy is checked.

A crash between any two steps leaves the data whole: before the swap the old table is still in
place (the half-filled new one is dropped and refilled on the next open); after it, the old
rows wait under the migrating name and the next open archives them.

Rows another process writes into the old table while the copy runs stay in the archive: in
cluster mode, stop the writers (API, bidders, sinks) of the old version before the first
process of the new one opens the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.analytics.schema import (
    COLUMNS,
    ENGINE,
    PARTITION_KEY,
    SORTING_KEY,
    TABLE,
    check_identifier,
    create_database_sql,
    create_table_sql,
    qualified_table,
)

logger = logging.getLogger(__name__)

MIGRATING_TABLE = f"{TABLE}_migrating"
ARCHIVE_PREFIX = f"{TABLE}_v1_"

Rows = Callable[[str], list[tuple[Any, ...]]]
Command = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TableShape:
    engine: str
    partition_key: str
    sorting_key: str

    @property
    def is_current(self) -> bool:
        return self == CURRENT_SHAPE


# As system.tables spells the definition in create_table_sql.
CURRENT_SHAPE = TableShape(ENGINE, PARTITION_KEY, ", ".join(SORTING_KEY))


@dataclass(frozen=True, slots=True)
class Migration:
    rows_copied: int
    archived_as: str


def ensure_table(
    rows: Rows,
    command: Command,
    database: str,
    *,
    copy: Command | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Migration | None:
    """Creates the database and table, or rebuilds an older table; returns what was migrated.

    ``rows`` runs a SELECT, ``command`` any other statement; ``copy`` (default ``command``)
    runs the one long statement, the row copy, for stores that need another timeout for it.
    Errors are the store's own, passed through.
    """
    command(create_database_sql(database))
    shapes = _shapes(rows, database)
    leftover = shapes.get(MIGRATING_TABLE)
    if leftover is not None and not leftover.is_current:
        # A crash after the swap: these are the old rows, waiting to be archived.
        archive = _archive_name(now)
        command(
            f"RENAME TABLE {qualified_table(database, MIGRATING_TABLE)} "
            f"TO {qualified_table(database, archive)}"
        )
        logger.warning(
            "analytics: finished an interrupted rebuild of %s. " + _ARCHIVED,
            qualified_table(database),
            qualified_table(database, archive),
            database,
            archive,
        )
    current = shapes.get(TABLE)
    if current is None or current.is_current:
        command(create_table_sql(database))
        return None
    return _rebuild(rows, command, copy or command, database, current, now)


def _rebuild(
    rows: Rows,
    command: Command,
    copy: Command,
    database: str,
    old: TableShape,
    now: Callable[[], datetime],
) -> Migration:
    table = qualified_table(database)
    migrating = qualified_table(database, MIGRATING_TABLE)
    # What is left of an interrupted copy; the old table still holds every row.
    command(f"DROP TABLE IF EXISTS {migrating}")
    command(create_table_sql(database, table=MIGRATING_TABLE))
    columns = ", ".join(COLUMNS)
    final = " FINAL" if old.engine == "ReplacingMergeTree" else ""
    # No block deduplication: identical blocks of genuinely different rows must all arrive.
    # (Every name in these statements passed check_identifier: S608 does not apply.)
    copy(
        f"INSERT INTO {migrating} ({columns}) SETTINGS insert_deduplicate = 0 "  # noqa: S608
        f"SELECT {columns} FROM {table}{final}"
    )
    command(f"EXCHANGE TABLES {table} AND {migrating}")
    archive = _archive_name(now)
    command(f"RENAME TABLE {migrating} TO {qualified_table(database, archive)}")
    copied = int(rows(f"SELECT count() FROM {table}")[0][0])  # noqa: S608
    logger.warning(
        "analytics: %s was %s ORDER BY (%s); rebuilt as %s ORDER BY (%s) with its %d rows. "
        + _ARCHIVED,
        table,
        old.engine,
        old.sorting_key,
        ENGINE,
        CURRENT_SHAPE.sorting_key,
        copied,
        qualified_table(database, archive),
        database,
        archive,
    )
    return Migration(rows_copied=copied, archived_as=archive)


_ARCHIVED = (
    "The old table is kept as %s; once the new one is checked, free its disk with "
    "DROP TABLE `%s`.`%s`"
)


def _shapes(rows: Rows, database: str) -> dict[str, TableShape]:
    found = rows(
        "SELECT name, engine, partition_key, sorting_key FROM system.tables "  # noqa: S608
        f"WHERE database = '{check_identifier(database)}' "
        f"AND name IN ('{TABLE}', '{MIGRATING_TABLE}')"
    )
    return {
        str(name): TableShape(str(engine), str(partition_key), str(sorting_key))
        for name, engine, partition_key, sorting_key in found
    }


def _archive_name(now: Callable[[], datetime]) -> str:
    return f"{ARCHIVE_PREFIX}{now().astimezone(UTC):%Y%m%d_%H%M%S}"
