"""The public look-ups without log-in (issue 16): designated institutions
at /public/institutions and the medical catalogue at /public/catalogue, in
Chinese or English. Each reads its query (``forms``), calls one look-up and
renders; a bad value is shown on the same page with the form kept."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from yibao.channels.web import forms
from yibao.channels.web.common import (
    channel_route,
    error_text,
    no_such_page,
    on_refusal,
    render,
    services_of,
)
from yibao.domain.catalogue import CATEGORIES
from yibao.domain.errors import DomainError
from yibao.services.directory import directory

SIZE = 20
INSTITUTION_FIELDS = ("area", "kind", "level", "offsite", "name")
CATALOGUE_FIELDS = ("q", "area", "category")
OFFSITE = {"": None, "yes": True, "no": False}


def _refused(request: Request, exc: DomainError, page: Any, fields: dict[str, str]) -> Response:
    """The look-up's page again, with what was asked and why it was refused."""
    template, keep = page if page else ("public/institutions.html", INSTITUTION_FIELDS)
    return render(
        request,
        template,
        exc.status,
        q={k: fields.get(k, "") for k in keep},
        found=None,
        links={},
        categories=CATEGORIES,
        error=error_text(request, exc),
    )


router = APIRouter(route_class=channel_route(_refused))

InstitutionQuery = Annotated[
    forms.PublicInstitutions, Depends(forms.queried(forms.PublicInstitutions))
]
CatalogueQuery = Annotated[forms.PublicCatalogue, Depends(forms.queried(forms.PublicCatalogue))]


def _links(path: str, asked: dict[str, str], found: directory.Page[Any]) -> dict[str, str]:
    """The previous and next pages' addresses, with the same question."""
    base = {k: v for k, v in asked.items() if v}
    out: dict[str, str] = {}
    if found.page > 1:
        out["prev"] = f"{path}?{urlencode({**base, 'page': found.page - 1})}"
    if found.page < found.pages:
        out["next"] = f"{path}?{urlencode({**base, 'page': found.page + 1})}"
    return out


@router.get("/institutions")
@on_refusal(("public/institutions.html", INSTITUTION_FIELDS))
def institutions(request: Request, q: InstitutionQuery) -> Response:
    found = directory.find_institutions(
        services_of(request).uow(),
        area=q.area,
        kind=q.kind,
        level=q.level,
        offsite=OFFSITE[q.offsite],
        name=q.name,
        page=q.page,
        size=SIZE,
    )
    asked = {k: str(getattr(q, k)) for k in INSTITUTION_FIELDS}
    return render(
        request,
        "public/institutions.html",
        q=asked,
        found=found,
        links=_links("/public/institutions", asked, found),
    )


@router.get("/catalogue")
@on_refusal(("public/catalogue.html", CATALOGUE_FIELDS))
def catalogue(request: Request, q: CatalogueQuery) -> Response:
    found = directory.find_catalogue(
        services_of(request).uow(),
        q=q.q,
        area=q.area,
        category=q.category,
        page=q.page,
        size=SIZE,
    )
    asked = {k: str(getattr(q, k)) for k in CATALOGUE_FIELDS}
    return render(
        request,
        "public/catalogue.html",
        q=asked,
        found=found,
        links=_links("/public/catalogue", asked, found),
        categories=CATEGORIES,
    )


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@on_refusal(("public/institutions.html", INSTITUTION_FIELDS))
def nowhere(request: Request) -> Response:
    raise no_such_page()
