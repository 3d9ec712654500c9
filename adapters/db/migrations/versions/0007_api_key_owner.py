"""API keys name the person they act for, so four-eyes rules compare people, not credentials.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(length=300), nullable=True))
    # Keys made so far: a user's key acts for that user; any other (the CLI's) for itself.
    op.execute(
        "UPDATE api_keys SET owner_id = CASE WHEN created_by LIKE 'user:%' "
        "THEN substr(created_by, 6) ELSE id END"
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("owner_id", existing_type=sa.String(length=300), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("owner_id")
