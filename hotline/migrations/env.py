"""Alembic environment: the models' metadata, batch mode on SQLite."""

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import hotline.models  # noqa: F401  (registers the tables)
from hotline.config import get_settings

config = context.config
target_metadata = SQLModel.metadata


def _include_name(name, type_, parent_names) -> bool:
    """The knowledge base's search index is each database's own kind of table (an FTS5
    table and its shadow tables on SQLite, a tsvector table on PostgreSQL), kept out of the
    models' metadata (hotline.knowledge.index): the comparison leaves it alone."""
    return not (type_ in ("table", "index") and name.startswith(("knowledge_index", "ix_knowledge_index")))


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
