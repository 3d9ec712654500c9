"""Tenants: the brands and agencies that own campaigns and customer profiles."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Tenant(BaseModel):
    """One customer of the platform. ``seat`` is its buyer seat at the exchanges."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    seat: str | None = None
