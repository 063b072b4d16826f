"""Applying the Alembic migrations from code (`hotline db upgrade`, `hotline serve`)."""

import logging

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.schema import AddConstraint
from sqlmodel import SQLModel

from hotline.config import ROOT
from hotline.db import Database, foreign_keys, indexes
from hotline.deadlines.holidays import seed_calendar
from hotline.indicators import totals

log = logging.getLogger("hotline.migrate")


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
    restore_indexes(db)
    restore_foreign_keys(db)
    with db.session() as session:
        seed_calendar(session)
        totals.ensure(session)
    db.refresh_statistics()


def restore_indexes(db: Database) -> list[str]:
    """Build the indexes the schema declares that the database lacks, and name them. A bulk
    load into empty tables (`hotline demo-data`, a first `hotline import tickets`) drops their
    secondary indexes and builds them after the rows: one killed part-way leaves them
    dropped, and every page and sweep slow, until this runs (at each upgrade: `hotline db
    upgrade`, `hotline serve`)."""
    built = []
    with db.engine.begin() as connection:
        present = {name for name, *_ in indexes(connection)}
        for table in SQLModel.metadata.sorted_tables:
            for index in sorted(table.indexes, key=lambda i: i.name):
                if index.name not in present:
                    log.warning("the index %s was missing (a bulk load stopped part-way?): building it", index.name)
                    index.create(connection)
                    built.append(index.name)
    return built


def restore_foreign_keys(db: Database) -> list[str]:
    """PostgreSQL: add the foreign keys the schema declares that the database lacks, check
    those added but not yet checked (NOT VALID), and name their tables and columns. A bulk
    load into empty tables drops them with the indexes, adds them after the rows unchecked,
    then checks them (hotline.demo.writer): one killed part-way leaves them dropped or
    unchecked until this runs (at each upgrade). Every key a migration named is named so in
    the models, so a key added here is the one the migrations made, name and all."""
    if db.is_sqlite:  # a SQLite load never drops them
        return []
    restored = []
    with db.engine.begin() as connection:
        inspector = inspect(connection)
        unchecked = {(table, name) for table, name, _, checked in foreign_keys(connection) if not checked}
        for table in SQLModel.metadata.sorted_tables:
            found = inspector.get_foreign_keys(table.name)
            for fk in found:
                if (table.name, fk["name"]) in unchecked:
                    what = f"{table.name}({', '.join(fk['constrained_columns'])})"
                    log.warning(
                        "the foreign key of %s was not checked (a bulk load stopped part-way?): checking it", what
                    )
                    quote = connection.dialect.identifier_preparer.quote
                    name = quote(fk["name"])
                    connection.exec_driver_sql(f"ALTER TABLE {quote(table.name)} VALIDATE CONSTRAINT {name}")
                    restored.append(what)
            present = {(tuple(fk["constrained_columns"]), fk["referred_table"]) for fk in found}
            for fk in sorted(table.foreign_key_constraints, key=lambda fk: fk.column_keys):
                if (tuple(fk.column_keys), fk.referred_table.name) not in present:
                    what = f"{table.name}({', '.join(fk.column_keys)})"
                    log.warning("the foreign key of %s was missing (a bulk load stopped part-way?): adding it", what)
                    connection.execute(AddConstraint(fk))
                    restored.append(what)
    return restored
