"""Prometheus scrape endpoint (outside /v1, like the probes: it is for the platform, not for API clients)."""

from fastapi import APIRouter
from fastapi.responses import Response

from app.observability import metrics

router = APIRouter(tags=["observability"])


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)
