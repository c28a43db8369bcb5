"""unattended runs: budgets, flags, resumed sessions, dependencies, parked queue items

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("flags", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("budget", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resumed_session", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("config_dir", sa.Text(), nullable=True))
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("budget", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("depends_on", sa.Text(), nullable=True))
    with op.batch_alter_table("queue") as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("blocked_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue") as batch_op:
        batch_op.drop_column("blocked_reason")
        batch_op.drop_column("retry_at")
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("depends_on")
        batch_op.drop_column("budget")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("config_dir")
        batch_op.drop_column("resumed_session")
        batch_op.drop_column("budget")
        batch_op.drop_column("flags")
