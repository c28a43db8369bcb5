"""agents: `end_reason`, why an agent ended as a typed value (decisions no longer read the error text)

Rows that ended before it are given the reason where their status or the one exact text the service
decided on says it; the others keep none.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NEVER_STARTED_TEXT = "never started: its service stopped before the agent's process was started"


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.Text(), nullable=True))
    agents = sa.table(
        "agents",
        sa.column("status", sa.Text()),
        sa.column("error", sa.Text()),
        sa.column("end_reason", sa.Text()),
    )
    for status in ("completed", "timeout", "rate_limited"):
        op.execute(sa.update(agents).where(agents.c.status == status).values(end_reason=status))
    op.execute(
        sa.update(agents)
        .where(agents.c.status == "failed", agents.c.error == _NEVER_STARTED_TEXT)
        .values(end_reason="never_started")
    )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("end_reason")
