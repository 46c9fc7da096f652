"""FastAPI application factory: `uvicorn app.main:create_app --factory`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import router as api_router
from app.auth.tokens import token_validator
from app.config import Settings, get_settings
from app.db.engine import create_engine, create_sessionmaker
from app.exception_handlers import add_exception_handlers
from app.health.endpoints import router as health_router
from app.logs import configure_logging
from app.middleware import (
    BodySizeLimitMiddleware,
    RequestBodyTooLarge,
    RequestContextMiddleware,
    body_too_large_handler,
)
from app.observability.endpoints import router as metrics_router
from app.web import mount_web


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Shared, long-lived resources live for the whole process; the scheduler runs elsewhere.
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            async with token_validator(settings) as validator:
                app.state.token_validator = validator
                yield
        finally:
            await engine.dispose()

    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(title="Steward", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    add_exception_handlers(app)
    app.add_exception_handler(RequestBodyTooLarge, body_too_large_handler)
    # Added last = outermost: even a 413 gets a request id, a metric and an access log line.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(api_router)
    mount_web(app, settings)
    if settings.teams_bot_app_id:
        from app.teams.bot import mount_bot  # the Teams SDK takes ~2 s to import: only when a bot is configured

        mount_bot(app, settings)
    return app
