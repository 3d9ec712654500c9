"""The analytics writers refuse to start without what they need."""

from __future__ import annotations

import asyncio

import pytest

from adapters.settings import Settings
from workers.analytics_sink import AnalyticsSinkConfigError, run_analytics_sink


async def test_sink_without_nats_url_says_which_setting_is_missing() -> None:
    with pytest.raises(AnalyticsSinkConfigError, match="CE_NATS_URL"):
        await run_analytics_sink(Settings(), asyncio.Event())


def test_inserts_smaller_than_a_batch_are_refused_when_settings_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CE_ANALYTICS__BATCH_SIZE", "500")
    monkeypatch.setenv("CE_ANALYTICS__MAX_INSERT_ROWS", "100")
    with pytest.raises(ValueError, match="CE_ANALYTICS__MAX_INSERT_ROWS must not be below"):
        Settings()
