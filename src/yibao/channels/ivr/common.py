"""What both platform adapters need: the public URL the platform sees, the
recorded prompts, and one error handler for what the dialog cannot say
itself."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute

from yibao.config import Settings
from yibao.domain.errors import DomainError
from yibao.runtime import Services
from yibao.services.inquiry.dialog import LANGS, PROMPTS, Turn, failure_turn

router = APIRouter()

LANGUAGE_TAGS = {"zh": "zh-CN", "en": "en-US"}


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def spoken_failures(answer: Callable[[Request, Turn], Response]) -> type[APIRoute]:
    """A route class for a platform's routes: the dialog speaks a service's
    refusal itself, so a ``DomainError`` that reaches here is the system
    failing under it (the database gone: the outcome is unknown). The caller
    hears that, in both languages, and the call ends, in the platform's
    own document (``answer``), never a JSON problem or a trace."""

    class SpokenRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handle(request)
                except DomainError:
                    return answer(request, failure_turn())

            return route

    return SpokenRoute


def prompt_dir(settings: Settings) -> Path:
    return settings.ivr_prompt_dir or settings.var_dir / "ivr-prompts"


def recording(settings: Settings, lang: str, key: str) -> Path | None:
    """The rendered recording of a fixed prompt, if `yibao ivr prompts` made it."""
    if not key or lang not in LANGS or key not in PROMPTS:
        return None
    path = prompt_dir(settings) / lang / f"{key}.wav"
    return path if path.is_file() else None


def public_base(request: Request, settings: Settings) -> str:
    """The scheme and host the platform called, which is what it signed: the
    configured public URL, else the request's own as a reverse proxy passes it
    on (X-Forwarded-Proto, X-Forwarded-Host)."""
    if settings.ivr_public_url:
        return settings.ivr_public_url.rstrip("/")
    headers = request.headers
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip() or request.url.scheme
    host = (
        headers.get("x-forwarded-host", "").split(",")[0].strip()
        or headers.get("host")
        or request.url.netloc
    )
    return f"{proto}://{host}"


def public_url(request: Request, settings: Settings) -> str:
    url = public_base(request, settings) + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


@router.get("/prompts/{lang}/{name}")
def prompt_file(lang: str, name: str, request: Request) -> Response:
    """A recorded fixed prompt (no personal data in it), for platforms to play."""
    key = name.removesuffix(".wav")
    path = recording(services(request).settings, lang, key)
    if path is None:
        return Response(status_code=404)
    return FileResponse(path, media_type="audio/wav")
