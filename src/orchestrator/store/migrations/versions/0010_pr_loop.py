"""what a task waits for in the PR loop (checks, mergeable, a person's approval), since when, and the
commit it waits on

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("waiting_for", sa.Text(), nullable=True))
        batch.add_column(sa.Column("waiting_since", sa.Text(), nullable=True))
        batch.add_column(sa.Column("head_sha", sa.Text(), nullable=True))
    op.create_index("ix_tasks_waiting_for", "tasks", ["waiting_for"])


def downgrade() -> None:
    op.drop_index("ix_tasks_waiting_for", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("head_sha")
        batch.drop_column("waiting_since")
        batch.drop_column("waiting_for")
