"""The versioned API root. Each domain's router is included here."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
