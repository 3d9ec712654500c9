from __future__ import annotations

import pytest

from domain.journey_lifecycle import JourneyMove, JourneyStatus, admits_entries, status_after

S = JourneyStatus
M = JourneyMove


@pytest.mark.parametrize(
    ("move", "current", "after"),
    [
        (M.PUBLISH, S.DRAFT, S.PUBLISHED),
        (M.PUBLISH, S.PAUSED, S.PUBLISHED),
        (M.PAUSE, S.PUBLISHED, S.PAUSED),
        (M.RESUME, S.PAUSED, S.PUBLISHED),
        (M.ARCHIVE, S.DRAFT, S.ARCHIVED),
        (M.EDIT, S.PUBLISHED, S.PUBLISHED),
    ],
)
def test_allowed_moves_lead_to_their_status(
    move: JourneyMove, current: JourneyStatus, after: JourneyStatus
) -> None:
    assert status_after(move, current) is after


@pytest.mark.parametrize(
    ("move", "current"),
    [
        (M.PAUSE, S.DRAFT),
        (M.RESUME, S.PUBLISHED),
        (M.PUBLISH, S.ARCHIVED),
        (M.EDIT, S.ARCHIVED),
        (M.ARCHIVE, S.ARCHIVED),
    ],
)
def test_other_moves_are_refused(move: JourneyMove, current: JourneyStatus) -> None:
    with pytest.raises(ValueError, match="cannot"):
        status_after(move, current)


def test_only_published_journeys_admit_customers() -> None:
    assert [status for status in S if admits_entries(status)] == [S.PUBLISHED]
