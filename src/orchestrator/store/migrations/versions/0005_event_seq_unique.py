"""events: `seq` is unique (renumbered in its order where two events shared one)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    events = sa.table("events", sa.column("id", sa.Text()), sa.column("seq", sa.BigInteger()))
    ordered = conn.execute(
        sa.text("SELECT id FROM events WHERE seq IS NOT NULL ORDER BY seq, created_at, id")
    ).all()
    for n, (event_id,) in enumerate(ordered, start=1):
        conn.execute(sa.update(events).where(events.c.id == event_id).values(seq=-n))
    conn.execute(sa.update(events).where(events.c.seq < 0).values(seq=-events.c.seq))
    op.create_index("ux_events_seq", "events", ["seq"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_events_seq", table_name="events")
