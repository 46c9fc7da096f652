"""Liveness and readiness probes for the orchestrator (outside /v1: they are not part of the API)."""

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import READ_ONLY_OPTION

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

# A probe must answer even when the store hangs, so the check has its own short deadline.
STORE_CHECK_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process is up and serving requests."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request) -> Health | JSONResponse:
    """Readiness: the store answers a trivial query."""
    engine: AsyncEngine = request.app.state.engine
    problem = await _store_problem(engine)
    if problem is None:
        return Health(status="ok", checks={"database": "ok"})
    body = Health(status="unavailable", checks={"database": problem})
    return JSONResponse(body.model_dump(), status_code=503)


async def _store_problem(engine: AsyncEngine) -> str | None:
    try:
        async with asyncio.timeout(STORE_CHECK_TIMEOUT_S):
            async with engine.connect() as connection:
                await connection.execution_options(**{READ_ONLY_OPTION: True})
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {STORE_CHECK_TIMEOUT_S:g}s"
    except Exception as exc:  # any driver error means "not ready"; the class name is safe to show
        log.warning("readiness check failed: %s", type(exc).__name__)
        return f"unreachable ({type(exc).__name__})"
    return None
