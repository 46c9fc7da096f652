"""FastAPI application factory: `uvicorn app.main:create_app --factory`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import router as api_router
from app.config import Settings, get_settings
from app.db.engine import create_engine, create_sessionmaker
from app.exception_handlers import add_exception_handlers
from app.health.endpoints import router as health_router
from app.logs import configure_logging


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Shared, long-lived resources live for the whole process; the scheduler runs elsewhere.
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    configure_logging(settings.log_level)
    app = FastAPI(title="Steward", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    add_exception_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router)
    return app
