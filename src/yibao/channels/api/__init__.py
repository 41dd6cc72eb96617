"""The JSON API under /api/v1, for staff consoles and machine clients."""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from yibao.channels.api import (
    auth,
    calendar,
    cards,
    deps,
    enrolment,
    errors,
    ivr,
    kiosk,
    public,
    registry,
    settlement,
)

# Reads any staff user may make: no permission to lack, no CSRF token to miss.
EVERY_STAFF = {("GET", "/auth/me"), ("GET", "/divisions")}

router = APIRouter()
for _part in (auth, registry, cards, calendar, enrolment, ivr, kiosk, settlement, public):
    # every operation's refusals in the OpenAPI document (errors.declare)
    for _route in _part.router.routes:
        if isinstance(_route, APIRoute):
            errors.declare(
                _route,
                deps.staff,
                permitted=all((m, _route.path) in EVERY_STAFF for m in _route.methods or ()),
            )
    router.include_router(_part.router)
