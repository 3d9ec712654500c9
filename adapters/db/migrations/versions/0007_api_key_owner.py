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
    # Keys made so far: a user's key acts for that user, a key's key for whomever that key
    # acts for (chains followed), any other (the CLI's) for itself.
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, created_by FROM api_keys")).all()
    made_by: dict[str, str] = {str(key_id): str(creator) for key_id, creator in rows}
    if made_by:
        connection.execute(
            sa.text("UPDATE api_keys SET owner_id = :owner WHERE id = :id"),
            [{"owner": _owner(key_id, made_by), "id": key_id} for key_id in made_by],
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("owner_id", existing_type=sa.String(length=300), nullable=False)


def _owner(key_id: str, made_by: dict[str, str]) -> str:
    seen = {key_id}
    creator = made_by[key_id]
    while creator.startswith("api_key:") and creator[8:] in made_by and creator[8:] not in seen:
        seen.add(creator[8:])
        key_id, creator = creator[8:], made_by[creator[8:]]
    return creator[5:] if creator.startswith("user:") else key_id


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("owner_id")
