"""Run Alembic programmatically (`steward db upgrade`, the demo, the tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(*, database_url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config that needs no alembic.ini; env.py reads the URL from it, else from Settings."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Migrate to `revision`. Blocking: it runs its own event loop, so call it outside one (or in a thread)."""
    command.upgrade(alembic_config(database_url=database_url), revision)


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Migrate through an open connection, e.g. from `await async_connection.run_sync(upgrade_connection)`."""
    command.upgrade(alembic_config(connection=connection), revision)


def downgrade_connection(connection: Connection, revision: str = "base") -> None:
    command.downgrade(alembic_config(connection=connection), revision)
