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
