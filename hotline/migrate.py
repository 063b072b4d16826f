"""Applying the Alembic migrations from code (`hotline db upgrade`, `hotline serve`)."""

from alembic import command
from alembic.config import Config

from hotline.config import ROOT
from hotline.db import Database
from hotline.deadlines.holidays import seed_calendar
from hotline.indicators import totals


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at `url`."""
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("script_location", "hotline:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database) -> None:
    """Bring the database to the newest migration, seed the holiday calendar, build the
    running totals if the database predates them, and refresh SQLite's statistics."""
    cfg = alembic_config(db.url)
    with db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        connection.commit()
    with db.session() as session:
        seed_calendar(session)
        totals.ensure(session)
    db.refresh_statistics()
