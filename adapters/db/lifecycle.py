"""The lifecycle's read model: status moves, votes and nudges, and the approval rules.

The lifecycle workflow is the source of truth for a submitted campaign; its activities write
here so REST can list and filter without asking Temporal, and so every bidder sees a status
change through the catalog revision.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, select, update

from adapters.db import statements
from adapters.db.repositories import (
    Sessions,
    _bump_catalog_revision,
    _dialect,
    campaign_at,
    raise_if_changed,
)
from adapters.db.tables import approval_rules_table, campaigns_table, lifecycle_events_table
from domain.approvals import ApprovalRule, Vote
from domain.campaigns import CampaignStatus
from domain.lifecycle import Transition


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    kind: str  # transition, vote, reminder, escalation
    at: datetime
    actor_id: str
    submission_id: str
    payload: dict[str, Any]


class LifecycleRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def apply_transition(
        self,
        tenant_id: str,
        campaign_id: str,
        transition: Transition,
        idempotency_key: str,
        submission_id: str = "",
        *,
        expected_version: int | None = None,
    ) -> bool:
        """Record the move and set the campaign's status, once per key. ``expected_version``:
        only on the campaign at that version, else CampaignChangedError and nothing written."""
        async with self._sessions.begin() as session:
            # Catalog lock first (see statements.bump_catalog_revision), then the idempotent insert.
            await _bump_catalog_revision(session)
            inserted = await session.execute(
                statements.insert_ignoring_duplicates(
                    _dialect(session),
                    lifecycle_events_table,
                    ["idempotency_key"],
                    {
                        "id": str(uuid.uuid4()),
                        "tenant_id": tenant_id,
                        "campaign_id": campaign_id,
                        "kind": "transition",
                        "submission_id": submission_id,
                        "actor_id": transition.actor_id,
                        "payload": transition.model_dump(mode="json"),
                        "at": transition.at,
                        "idempotency_key": idempotency_key,
                    },
                )
            )
            if inserted.first() is None:  # this key was applied before
                return False
            moved = await session.execute(
                update(campaigns_table)
                .where(*campaign_at(campaign_id, expected_version, tenant_id=tenant_id))
                .values(
                    status=transition.to_status.value,
                    updated_at=datetime.now(UTC),
                    version=campaigns_table.c.version + 1,
                )
            )
            # Raised inside the transaction: the event inserted above goes back with it.
            raise_if_changed(moved, campaign_id, expected_version)
            return True

    async def record_vote(
        self,
        tenant_id: str,
        campaign_id: str,
        submission_id: str,
        vote: Vote,
        idempotency_key: str,
    ) -> bool:
        return await self._append(
            tenant_id,
            campaign_id,
            "vote",
            vote.at,
            vote.voter_id,
            vote.model_dump(mode="json"),
            idempotency_key,
            submission_id,
        )

    async def record_nudge(
        self,
        tenant_id: str,
        campaign_id: str,
        kind: str,
        at: datetime,
        payload: dict[str, Any],
        idempotency_key: str,
    ) -> bool:
        return await self._append(tenant_id, campaign_id, kind, at, "", payload, idempotency_key)

    async def _append(
        self,
        tenant_id: str,
        campaign_id: str,
        kind: str,
        at: datetime,
        actor_id: str,
        payload: dict[str, Any],
        idempotency_key: str,
        submission_id: str = "",
    ) -> bool:
        async with self._sessions.begin() as session:
            inserted = await session.execute(
                statements.insert_ignoring_duplicates(
                    _dialect(session),
                    lifecycle_events_table,
                    ["idempotency_key"],
                    {
                        "id": str(uuid.uuid4()),
                        "tenant_id": tenant_id,
                        "campaign_id": campaign_id,
                        "kind": kind,
                        "submission_id": submission_id,
                        "actor_id": actor_id,
                        "payload": payload,
                        "at": at,
                        "idempotency_key": idempotency_key,
                    },
                )
            )
            return inserted.first() is not None

    async def history(self, tenant_id: str, campaign_id: str) -> list[LifecycleEvent]:
        """Everything decided about the campaign, oldest first."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(lifecycle_events_table)
                    .where(
                        lifecycle_events_table.c.tenant_id == tenant_id,
                        lifecycle_events_table.c.campaign_id == campaign_id,
                    )
                    .order_by(lifecycle_events_table.c.at, lifecycle_events_table.c.kind)
                )
            ).mappings()
            return [
                LifecycleEvent(
                    kind=row["kind"],
                    at=row["at"],
                    actor_id=row["actor_id"],
                    submission_id=row["submission_id"],
                    payload=row["payload"],
                )
                for row in rows
            ]

    async def awaiting_vote_from(self, tenant_id: str, voter_id: str) -> list[str]:
        """Campaigns in review that ``voter_id`` neither submitted nor voted on yet.

        The latest submission counts: its in_review move carries the submitter, and votes of
        earlier (rejected) submissions do not.
        """
        events = lifecycle_events_table
        in_review = campaigns_table.c.status == CampaignStatus.IN_REVIEW.value
        latest = (
            select(
                events.c.campaign_id,
                func.max(events.c.at).label("submitted_at"),
            )
            .join(campaigns_table, campaigns_table.c.id == events.c.campaign_id)
            .where(events.c.tenant_id == tenant_id, events.c.kind == "transition", in_review)
            .group_by(events.c.campaign_id)
            .subquery()
        )
        async with self._sessions() as session:
            submissions = (
                await session.execute(
                    select(events.c.campaign_id, events.c.actor_id, events.c.submission_id).join(
                        latest,
                        and_(
                            latest.c.campaign_id == events.c.campaign_id,
                            latest.c.submitted_at == events.c.at,
                        ),
                    )
                )
            ).all()
            voted = {
                (campaign_id, submission_id)
                for campaign_id, submission_id in (
                    await session.execute(
                        select(events.c.campaign_id, events.c.submission_id).where(
                            events.c.tenant_id == tenant_id,
                            events.c.kind == "vote",
                            events.c.actor_id == voter_id,
                        )
                    )
                ).all()
            }
        return sorted(
            campaign_id
            for campaign_id, submitter, submission_id in submissions
            if submitter != voter_id and (campaign_id, submission_id) not in voted
        )

    async def rules(self, tenant_id: str) -> list[ApprovalRule]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(approval_rules_table.c.rule).where(
                        approval_rules_table.c.tenant_id == tenant_id
                    )
                )
            ).scalars()
            return [ApprovalRule.model_validate(rule) for rule in rows]

    async def save_rule(self, tenant_id: str, rule: ApprovalRule) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                statements.upsert(
                    _dialect(session),
                    approval_rules_table,
                    ["tenant_id", "campaign_type"],
                    {
                        "tenant_id": tenant_id,
                        "campaign_type": rule.campaign_type,
                        "rule": rule.model_dump(mode="json"),
                        "updated_at": datetime.now(UTC),
                    },
                )
            )

    async def delete_rule(self, tenant_id: str, campaign_type: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                approval_rules_table.delete().where(
                    approval_rules_table.c.tenant_id == tenant_id,
                    approval_rules_table.c.campaign_type == campaign_type,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


def transitions_of(events: Sequence[LifecycleEvent]) -> list[Transition]:
    return [Transition.model_validate(e.payload) for e in events if e.kind == "transition"]
