"""The versioned API root. Each domain's router is included here."""

from fastapi import APIRouter

from app.activity.endpoints import router as activity_router
from app.auth.endpoints import router as auth_router
from app.customers.endpoints import router as customers_router
from app.datamap.endpoints import router as datamap_router
from app.disclosures.endpoints import router as disclosures_router
from app.disposal.endpoints import router as disposal_router
from app.plans.endpoints import router as plans_router
from app.posture.endpoints import router as posture_router
from app.references.endpoints import router as references_router
from app.reports.endpoints import router as reports_router
from app.webhooks.endpoints import router as webhooks_router

router = APIRouter(prefix="/v1")
router.include_router(auth_router)
router.include_router(webhooks_router)
router.include_router(customers_router)
router.include_router(activity_router)
router.include_router(datamap_router)
router.include_router(reports_router)
router.include_router(plans_router)
router.include_router(disposal_router)
router.include_router(disclosures_router)
router.include_router(references_router)
router.include_router(posture_router)
