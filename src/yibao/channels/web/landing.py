"""The start page at ``/``: where each channel is, for someone who opened
the server's address (``yibao serve`` prints it first), in Chinese or
English. It reads nothing and changes nothing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from yibao.channels.web.common import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def start(request: Request) -> Response:
    return render(request, "landing.html")
