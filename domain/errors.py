"""Errors the domain names. Adapters translate their own failures into these.

CampaignExpressError
└── DependencyUnavailable   a store or service did not answer in time, or its breaker is open
"""

from __future__ import annotations


class CampaignExpressError(Exception):
    """Base of every error the platform raises on purpose."""


class DependencyUnavailable(CampaignExpressError):
    """A dependency failed, timed out, or is cut off by its circuit breaker."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason
