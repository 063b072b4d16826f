"""verification codes for online filing

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 16:00:00

`verification_codes`: the codes sent by text message to citizens who file a matter on the
public site, kept as keyed hashes of the phone and the code (hotline.filing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verification_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_key", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hotline.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", hotline.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_verification_codes_phone_key_created_at", "verification_codes", ["phone_key", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_verification_codes_phone_key_created_at", table_name="verification_codes")
    op.drop_table("verification_codes")
