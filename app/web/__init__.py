"""The web UI: server-rendered pages for privacy officers, approvers, legal and auditors."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.web.auth import WebSignIn
from app.web.endpoints import router

STATIC_DIR = Path(__file__).parent / "static"


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Serve the pages and their static files on `app`; the sign-in client is closed with the app."""
    signin = WebSignIn(settings)
    app.state.web_sign_in = signin
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        context: AbstractAsyncContextManager[Any] = inner(app)
        try:
            async with context as state:
                yield state
        finally:
            signin.close()

    app.router.lifespan_context = lifespan
