"""A journey's status and the moves marketers make on it.

::

    draft ──publish──▶ published ◀──resume── paused
                          │  ▲                 ▲
                          │  └────publish──────┤
                          └──────pause─────────┘
    any of them ──archive──▶ archived (final)

The draft stays editable in every status but archived; publishing turns the draft into the
next immutable version. Paused journeys admit no one new; customers inside go on, on the
version they entered.
"""

from __future__ import annotations

from enum import StrEnum


class JourneyStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    PAUSED = "paused"
    ARCHIVED = "archived"


class JourneyMove(StrEnum):
    EDIT = "edit"
    PUBLISH = "publish"
    PAUSE = "pause"
    RESUME = "resume"
    ARCHIVE = "archive"


_FROM: dict[JourneyMove, frozenset[JourneyStatus]] = {
    JourneyMove.EDIT: frozenset(
        {JourneyStatus.DRAFT, JourneyStatus.PUBLISHED, JourneyStatus.PAUSED}
    ),
    JourneyMove.PUBLISH: frozenset(
        {JourneyStatus.DRAFT, JourneyStatus.PUBLISHED, JourneyStatus.PAUSED}
    ),
    JourneyMove.PAUSE: frozenset({JourneyStatus.PUBLISHED}),
    JourneyMove.RESUME: frozenset({JourneyStatus.PAUSED}),
    JourneyMove.ARCHIVE: frozenset(
        {JourneyStatus.DRAFT, JourneyStatus.PUBLISHED, JourneyStatus.PAUSED}
    ),
}

_TO: dict[JourneyMove, JourneyStatus | None] = {
    JourneyMove.EDIT: None,  # the status stays
    JourneyMove.PUBLISH: JourneyStatus.PUBLISHED,
    JourneyMove.PAUSE: JourneyStatus.PAUSED,
    JourneyMove.RESUME: JourneyStatus.PUBLISHED,
    JourneyMove.ARCHIVE: JourneyStatus.ARCHIVED,
}


def status_after(move: JourneyMove, current: JourneyStatus) -> JourneyStatus:
    """The status ``move`` leads to; raises ``ValueError`` when it is not allowed now."""
    if current not in _FROM[move]:
        raise ValueError(f"a {current} journey cannot {move}")
    return _TO[move] or current


def admits_entries(status: JourneyStatus) -> bool:
    return status is JourneyStatus.PUBLISHED
