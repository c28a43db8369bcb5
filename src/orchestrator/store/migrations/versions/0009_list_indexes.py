"""indexes for the newest-first pages of agents and tasks

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_agents_created_at_id", "agents", ["created_at", "id"])
    op.create_index("ix_tasks_created_at_id", "tasks", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_created_at_id", table_name="tasks")
    op.drop_index("ix_agents_created_at_id", table_name="agents")
