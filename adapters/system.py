"""The real clock, ids and randomness the domain's ports ask for."""

from __future__ import annotations

import itertools
import random
import secrets
import time
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ProcessIds:
    """Unique ids without a syscall each: a random per-process prefix and a counter.

    uuid4 reads os.urandom on every call, which cost 16% of a bid's CPU here (bid id,
    notice ids and two analytics event ids per request). 64 random bits per process start
    keep ids from different processes and restarts apart.
    """

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


new_id = ProcessIds()


def system_random() -> random.Random:
    """Pacing and splits: not security-sensitive, seeded from the OS."""
    return random.Random()
