"""The JSON API under /api/v1, for staff consoles and machine clients."""

from fastapi import APIRouter

from yibao.channels.api import auth, calendar, cards, enrolment, ivr, kiosk, registry, settlement

router = APIRouter()
router.include_router(auth.router)
router.include_router(registry.router)
router.include_router(cards.router)
router.include_router(calendar.router)
router.include_router(enrolment.router)
router.include_router(ivr.router)
router.include_router(kiosk.router)
router.include_router(settlement.router)
