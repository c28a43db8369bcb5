"""inbound GitHub webhook deliveries and the tasks made from issues

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_deliveries",
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("received_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_table(
        "github_issues",
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("pr_commented_at", sa.Text(), nullable=True),
        sa.Column("end_commented_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("repo", "number"),
    )


def downgrade() -> None:
    op.drop_table("github_issues")
    op.drop_table("github_deliveries")
