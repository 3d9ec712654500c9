"""The real clock, ids and randomness the domain's ports ask for."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def new_id() -> str:
    return uuid.uuid4().hex


def system_random() -> random.Random:
    """Pacing and splits: not security-sensitive, seeded from the OS."""
    return random.Random()
