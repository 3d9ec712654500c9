"""The analytics sink refuses to start without what it needs."""

from __future__ import annotations

import asyncio

import pytest

from adapters.settings import Settings
from workers.analytics_sink import AnalyticsSinkConfigError, run_analytics_sink


async def test_sink_without_nats_url_says_which_setting_is_missing() -> None:
    with pytest.raises(AnalyticsSinkConfigError, match="CE_NATS_URL"):
        await run_analytics_sink(Settings(), asyncio.Event())
