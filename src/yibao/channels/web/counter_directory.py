"""The counter's maintenance of the public directory (issue 16), under
/counter/directory/: the institutions of the staff member's area with
their public fields, a catalogue item, a catalogue file with its row-level
errors, and the change history. The rules (who may, in which area, what an
item may be) are ``services/directory``'s; this page reads the forms,
calls one use case and shows the answer or the refusal."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from yibao.channels.web import forms
from yibao.channels.web.common import (
    channel_route,
    error_text,
    services_of,
)
from yibao.channels.web.counter import GivenCsrf, _clerk, _page
from yibao.domain import values
from yibao.domain.actors import Channel
from yibao.domain.catalogue import CATEGORIES
from yibao.domain.errors import DomainError
from yibao.services.directory import catalogue_import, directory

TEMPLATE = "counter/directory.html"


def _directory_page(request: Request, status: int = 200, **context: Any) -> Response:
    """The area's institutions and the recent changes, as far as the role may see."""
    clerk = _clerk(request)
    uow = services_of(request).uow
    institutions = directory.find_institutions(
        uow(), area=clerk.actor.division, size=directory.MAX_SIZE
    )
    try:
        changes = directory.history(uow(), actor=clerk.actor, limit=30)
    except DomainError as exc:
        changes = []
        context.setdefault("error", error_text(request, exc))
    return _page(
        request,
        clerk.data,
        TEMPLATE,
        status,
        actor=clerk.actor,
        institutions=institutions.items,
        changes=changes,
        categories=CATEGORIES,
        **context,
    )


def _refused(request: Request, exc: DomainError, page: Any, fields: dict[str, str]) -> Response:
    try:
        return _directory_page(
            request, exc.status, error=error_text(request, exc), item=fields, refused=True
        )
    except DomainError as again:  # the page itself cannot be read: the message alone
        return _page(
            request,
            {},
            TEMPLATE,
            again.status,
            actor=None,
            institutions=[],
            changes=[],
            categories=CATEGORIES,
            error=error_text(request, exc),
        )


router = APIRouter(route_class=channel_route(_refused))

InstitutionForm = Annotated[
    forms.DirectoryInstitution, Depends(forms.posted(forms.DirectoryInstitution))
]
ItemForm = Annotated[forms.DirectoryItem, Depends(forms.posted(forms.DirectoryItem))]
UploadForm = Annotated[forms.CatalogueUpload, Depends(forms.posted(forms.CatalogueUpload))]


@router.get("/")
def home(request: Request) -> Response:
    return _directory_page(request)


@router.post("/institution")
def change_institution(request: Request, given: GivenCsrf, form: InstitutionForm) -> Response:
    clerk = _clerk(request, csrf=given)
    view = directory.change_institution(
        services_of(request).uow(),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        code=form.code,
        name=form.name or None,
        address=form.address,
        telephone=form.telephone,
        offsite=form.offsite,
    )
    return _directory_page(request, saved_institution=view)


@router.post("/catalogue")
def set_item(request: Request, given: GivenCsrf, form: ItemForm) -> Response:
    clerk = _clerk(request, csrf=given)
    item = directory.set_catalogue_item(
        services_of(request).uow(),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        area=form.area,
        code=form.code,
        name=form.name,
        category=form.category,
        selfpay_bp=form.selfpay_pct,
        price=form.price,
    )
    return _directory_page(request, saved_item=item)


@router.post("/import")
def import_file(request: Request, given: GivenCsrf, form: UploadForm) -> Response:
    clerk = _clerk(request, csrf=given)
    # read here, off the event loop: the form keeps the file spooled
    content = values.upload(
        form.upload.file.read, most=services_of(request).settings.upload_max_bytes
    )
    result = catalogue_import.import_catalogue(
        services_of(request).uow(),
        actor=clerk.actor,
        channel=Channel.COUNTER,
        area=form.area,
        filename=(form.upload.filename or "catalogue.csv")[:200],
        content=content,
    )
    return _directory_page(request, imported=result)
