"""Models and migrations never drift apart; an empty database migrates by itself."""

from alembic import command

from hotline.migrate import alembic_config, upgrade


def test_alembic_check_finds_no_difference(database):
    command.check(alembic_config(database.url))


def test_upgrade_is_idempotent_and_seeds_the_calendar(database):
    from sqlmodel import func, select

    from hotline.models import CalendarYear

    upgrade(database)
    with database.read_session() as s:
        years = s.exec(select(func.count()).select_from(CalendarYear)).one()
    assert years >= 20  # the years the chinese-calendar package covers


def test_sqlite_pragmas(database):
    if not database.is_sqlite:
        return
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def _users_columns_and_indexes(db):
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("users")}
        indexes = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return columns, indexes


def test_an_old_sqlite_drops_the_lockout_columns_and_keeps_the_case_index(tmp_path, monkeypatch):
    """0011 on an SQLite older than 3.35 rebuilds users in batch mode: the index on
    lower(username) that the rebuild cannot copy is there again after, and still refuses."""
    import sqlite3

    import pytest
    import sqlalchemy as sa

    from hotline.db import Database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0010")
    db = Database(url)
    before, _ = _users_columns_and_indexes(db)
    assert {"failed_logins", "locked_until"} <= before
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    command.upgrade(cfg, "head")
    after, indexes = _users_columns_and_indexes(db)
    assert not {"failed_logins", "locked_until"} & after
    assert "uq_users_username_lower" in indexes
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (username, role, password_hash, active, created_at, must_change_password) "
            "VALUES ('Ann', 'agent', 'x', 1, '2026-11-01 00:00:00', 0)"
        )
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (username, role, password_hash, active, created_at, must_change_password) "
            "VALUES ('ann', 'agent', 'x', 1, '2026-11-01 00:00:00', 0)"
        )
    db.dispose()


def test_an_upgrade_builds_the_indexes_a_stopped_bulk_load_left_dropped(database):
    """A bulk load into empty tables drops their secondary indexes and builds them after the
    rows; one killed in between leaves them dropped until the next upgrade builds them."""
    from hotline.migrate import restore_indexes

    def names() -> set[str]:
        listing = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if database.is_sqlite
            else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
        with database.engine.connect() as conn:
            return set(conn.exec_driver_sql(listing).scalars())

    assert restore_indexes(database) == []  # a migrated database lacks none
    before = names()
    with database.engine.begin() as conn:
        for name in ("ix_tickets_next_due_at", "ix_notifications_created_at"):
            conn.exec_driver_sql(f"DROP INDEX {name}")
    assert "ix_tickets_next_due_at" not in names()
    upgrade(database)
    assert names() == before


def test_an_upgrade_adds_the_foreign_keys_a_stopped_bulk_load_left_dropped(database):
    """On PostgreSQL a bulk load into empty tables drops their foreign keys too and adds them
    after the rows; one killed in between leaves them dropped until the next upgrade."""
    import pytest

    from hotline.migrate import restore_foreign_keys
    from tests.helpers import foreign_key_definitions

    if database.is_sqlite:
        pytest.skip("SQLite keeps its foreign keys in its tables' definitions: a load never drops them")

    assert restore_foreign_keys(database) == []  # a migrated database lacks none
    # With their names: a key a migration named comes back with that name.
    before = foreign_key_definitions(database)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_ticket_id_fkey")
        conn.exec_driver_sql("ALTER TABLE tickets DROP CONSTRAINT fk_tickets_article_id")
    assert restore_foreign_keys(database) == ["tickets(article_id)", "ticket_events(ticket_id)"]
    assert foreign_key_definitions(database) == before


def test_an_upgrade_checks_the_foreign_keys_a_stopped_bulk_load_left_unchecked(database):
    """A bulk load adds its foreign keys back NOT VALID, then checks each: one killed in
    between leaves them unchecked (still enforced on new rows) until the next upgrade."""
    import pytest

    from hotline.migrate import restore_foreign_keys
    from tests.helpers import foreign_key_definitions

    if database.is_sqlite:
        pytest.skip("SQLite keeps its foreign keys in its tables' definitions: a load never drops them")

    before = foreign_key_definitions(database)
    unchecked = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
    with database.engine.begin() as conn:
        definition = conn.exec_driver_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'callbacks_ticket_id_fkey'"
        ).scalar_one()
        conn.exec_driver_sql("ALTER TABLE callbacks DROP CONSTRAINT callbacks_ticket_id_fkey")
        conn.exec_driver_sql(f"ALTER TABLE callbacks ADD CONSTRAINT callbacks_ticket_id_fkey {definition} NOT VALID")
        assert conn.exec_driver_sql(unchecked).scalar_one() == 1
    assert restore_foreign_keys(database) == ["callbacks(ticket_id)"]
    with database.engine.begin() as conn:
        assert conn.exec_driver_sql(unchecked).scalar_one() == 0
    assert foreign_key_definitions(database) == before
    assert restore_foreign_keys(database) == []
