"""Database URL handling shared by the settings, the engine factory and Alembic."""

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def to_async_url(url: str) -> str:
    """Return `url` with the async driver Steward uses for its backend, or raise ValueError.

    Operators write plain `postgresql://` or `sqlite://` URLs; the service runs on aiosqlite/asyncpg.
    """
    if url.startswith("postgres://"):  # the Heroku-style alias SQLAlchemy no longer accepts
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL (expected e.g. sqlite+aiosqlite:///./steward.db)") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")
    wanted = ASYNC_DRIVERS[backend]
    if "+" in parsed.drivername and driver != wanted:
        raise ValueError(f"unsupported driver {driver!r} for {backend}; use {backend}+{wanted}")
    return parsed.set(drivername=f"{backend}+{wanted}").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"
