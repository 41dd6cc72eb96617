"""``POST /fsi/api/rsfComIfsService/callService``: parse the platform's
envelope and the transaction's input (``services.settlement.inputs``, one
model per infno, before anything else runs), authenticate the institution
(a use case), call the one use case of the ``infno``, render the platform's
answer. No rule lives here, and nothing here opens, commits or audits a
transaction.

Every failure is ``infcode`` -1 with an ``err_msg`` naming the reason: a bad
value names its field by its path in the message. "Internal error" is left
for a fault of yibao itself, and a database that fails during the request
is the unknown-outcome answer. Never an HTTP 500, never a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from yibao.clock import CHINA
from yibao.domain import values
from yibao.domain.errors import DomainError, invalid
from yibao.observability import context, metrics
from yibao.runtime import Services
from yibao.services.access import institution_auth as gateway
from yibao.services.access.institution_auth import Caller
from yibao.services.inquiry import person_info
from yibao.services.settlement import inputs
from yibao.services.settlement import settlement as svc
from yibao.services.settlement.fast_path import INFNOS as FAST_INFNOS
from yibao.services.settlement.fast_path import FastPath
from yibao.store.uow import UnitOfWork

log = logging.getLogger("yibao.his")

# Amount fields rendered as yuan with two decimals on the wire.
AMOUNTS = {
    "balc",
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "pool_prop_selfpay",
    "cvlserv_pay",
    "hifes_pay",
    "hifmi_pay",
    "hifob_pay",
    "maf_pay",
    "oth_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "psn_cash_pay",
    "hosp_part_amt",
    "acct_mulaid_pay",
    "fund_payamt",
    "det_item_fee_sumamt",
    "pric",
    "pric_uplmt_amt",
    "overlmt_amt",
    "refund_owed",
}


def render(value: Any, key: str = "") -> Any:
    """Fen to yuan for the amount fields, recursively."""
    if isinstance(value, dict):
        return {k: render(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, key) for v in value]
    if key in AMOUNTS and isinstance(value, int) and not isinstance(value, bool):
        return value / 100  # int / int is the correctly rounded float, as Decimal's
    return value


Handler = Callable[[UnitOfWork, Caller, inputs.Request], dict[str, Any]]


def _msg(r: inputs.Request) -> svc.Message:
    """The changing request's idempotency key and what it asked, as sent."""
    return svc.Message(r.envelope.msgid, r.infno, r.sent)


def _h9001(u: UnitOfWork, c: Caller, r: inputs.Request) -> dict[str, Any]:
    return svc.sign_in(u, c, opter_no=r.input.signIn.opter_no or r.envelope.opter)


def _h1101(u: UnitOfWork, c: Caller, r: inputs.Request) -> dict[str, Any]:
    d: inputs.PersonQuery = r.input.data
    return person_info.person_info(
        u, c, cert_type=d.mdtrt_cert_type, cert_no=d.mdtrt_cert_no, data=d.model_dump()
    )


# infno -> the one use case it calls, with its input as parsed
HANDLERS: dict[str, Handler] = {
    "9001": _h9001,
    "9002": lambda u, c, r: svc.sign_out(u, c, sign_no=r.input.signOut.sign_no),
    "1101": _h1101,
    "2201": lambda u, c, r: svc.register(u, c, msg=_msg(r), data=r.input.data),
    "2202": lambda u, c, r: svc.cancel_registration(u, c, msg=_msg(r), data=r.input.data),
    "2203": lambda u, c, r: svc.visit_info(
        u, c, msg=_msg(r), mdtrtinfo=r.input.mdtrtinfo, diseinfo=r.input.diseinfo
    ),
    "2204": lambda u, c, r: svc.upload_fees(u, c, msg=_msg(r), lines=r.input.feedetail),
    "2205": lambda u, c, r: svc.cancel_fees(u, c, msg=_msg(r), data=r.input.data),
    "2206": lambda u, c, r: svc.presettle(u, c, data=r.input.data),
    "2207": lambda u, c, r: svc.settle(u, c, msg=_msg(r), data=r.input.data),
    "2208": lambda u, c, r: svc.cancel_settlement(u, c, msg=_msg(r), data=r.input.data),
    "3201": lambda u, c, r: svc.reconcile(u, c, data=r.input.data),
    "5203": lambda u, c, r: svc.query_settlement(u, c, data=r.input.data),
    svc.EQUIPMENT_FAILURE: lambda u, c, r: svc.declare_failure(
        u, c, msg=_msg(r), data=r.input.data
    ),
}
NO_SIGN_IN = {"9001"}


def _echo(env: dict[str, Any]) -> tuple[str, str]:
    """The area and the msgid's tail the answer's reference repeats, when
    they are of their form (the request may be the malformed one refused)."""
    area, msgid = env.get("mdtrtarea_admvs"), env.get("msgid")
    area = area if isinstance(area, str) and len(area) == 6 and values.is_digits(area) else "000000"
    tail = msgid[-8:] if isinstance(msgid, str) and inputs.MSGID.fullmatch(msgid) else ""
    return area, tail


def answer(services: Services, env: dict[str, Any], infcode: int, output: Any, err: str) -> bytes:
    """The platform's answer envelope, as the JSON body."""
    now = services.clock.now().astimezone(CHINA)
    stamp = now.strftime("%Y%m%d%H%M%S")
    area, tail = _echo(env)
    body = {
        "infcode": infcode,
        "inf_refmsgid": f"{area}{stamp}{tail}",
        "refmsg_time": now.strftime("%Y%m%d%H%M%S%f")[:17],
        "respond_time": now.strftime("%Y%m%d%H%M%S%f")[:17],
        "err_msg": err,
        "output": render(output) if output is not None else {},
    }
    # the X-Request-ID of this request, as in the log lines and the audit
    # entries it wrote: an extra field, which a HIS that does not know it skips
    rid = context.request_id()
    if rid is not None:
        body["request_id"] = rid
    return orjson.dumps(body)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        env = orjson.loads(raw)  # UTF-8 only, as the platform's interface
    except orjson.JSONDecodeError as exc:
        # where and why (a number past a double, a lone surrogate): orjson's
        # reason names a line and a column, never the body's content
        raise invalid(
            "body", f"报文不是UTF-8 JSON({exc})", f"the body is not UTF-8 JSON: {exc}"
        ) from None
    if not isinstance(env, dict):
        raise invalid("body", "报文应为JSON对象", "the body is a JSON object")
    return env


def handle(
    services: Services,
    headers: Mapping[str, str],
    raw: bytes,
    env: dict[str, Any],
    path_infno: str | None,
    request: inputs.Request | None = None,
) -> bytes:
    """The general path: parse (unless ``respond`` did), authenticate (a use
    case), call the transaction's use case, render. Each use case commits
    its own work."""
    r = request or inputs.parse(env, path_infno)
    e = r.envelope
    caller = gateway.authenticate(
        services.uow(),
        access_id=headers.get("x-tif-paasid"),
        timestamp=headers.get("x-tif-timestamp"),
        nonce=headers.get("x-tif-nonce"),
        signature=headers.get("x-tif-signature"),
        body_sig=headers.get("x-yb-body-signature"),
        body=raw,
        fixmedins_code=e.fixmedins_code,
        sign_no=e.sign_no,
        needs_sign_in=r.infno not in NO_SIGN_IN,
        signed_with=(e.cainfo, e.signtype),
    )
    output = HANDLERS[r.infno](services.uow(), caller, r)
    return answer(services, env, 0, output, "")


async def respond(
    services: Services,
    fast: FastPath | None,
    headers: Mapping[str, str],
    raw: bytes,
    path_infno: str | None,
) -> bytes:
    """The answer to one request: the fast path's when it gives one, else the
    general path's; every failure an envelope with ``infcode`` -1."""
    env: dict[str, Any] = {}
    started, path = time.perf_counter(), "general"
    try:
        env = _parse(raw)
        # The whole message is read first, on either path, by the same
        # parser: a bad value is refused before the request is authenticated
        # or changes anything. A code the fast path may answer is small and
        # read here; any other (up to 1,000 fee lines) in the thread pool.
        request, infno = None, env.get("infno")
        if fast is not None and isinstance(infno, str) and infno in FAST_INFNOS:
            request = inputs.parse(env, path_infno)
            path = "fast"
            output = await fast.answer(headers, raw, request)
            if output is not None:
                metrics.his_answered(infno, path, "0", time.perf_counter() - started)
                return answer(services, env, 0, output, "")
            path = "general"
        # the services are synchronous (one database transaction each)
        body = await run_in_threadpool(handle, services, headers, raw, env, path_infno, request)
        metrics.his_answered(env.get("infno"), path, "0", time.perf_counter() - started)
        return body
    except DomainError as exc:
        metrics.his_answered(env.get("infno"), path, exc.code, time.perf_counter() - started)
        return answer(services, env, -1, None, exc.message)
    except Exception:
        metrics.his_answered(env.get("infno"), path, "internal", time.perf_counter() - started)
        log.exception("HIS %r failed", str(env.get("infno"))[:8])
        return answer(
            services,
            env,
            -1,
            None,
            "系统内部错误，请稍后再试 / internal error; please try again later",
        )


async def _endpoint(request: Request) -> Response:
    state = request.app.state
    body = await respond(
        state.services,
        state.his_fast,
        request.headers,
        await request.body(),
        request.path_params.get("infno"),
    )
    return Response(body, media_type=JSON)


JSON = "application/json"
MAX_BODY = 16 * 1024 * 1024
ENDPOINT = "/fsi/api/rsfComIfsService/callService"
ROUTES = [
    Route(ENDPOINT, _endpoint, methods=["POST"]),
    Route(ENDPOINT + "/{infno}", _endpoint, methods=["POST"]),
]


async def front(app: Any, scope: Scope, receive: Receive, send: Send) -> bool:
    """The endpoint's POSTs as a bare ASGI handler, ahead of the application's
    middleware and routing (``app.App``): every visit costs two of these
    requests. Answers False, having read nothing, for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    if path == ENDPOINT:
        path_infno = None
    elif path.startswith(ENDPOINT + "/") and "/" not in path[len(ENDPOINT) + 1 :]:
        path_infno = path[len(ENDPOINT) + 1 :] or None
    else:
        return False
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            body = answer(
                app.state.services,
                {},
                -1,
                None,
                invalid(
                    "body",
                    f"报文超过{MAX_BODY // 1024 // 1024}MB",
                    f"the body is over {MAX_BODY // 1024 // 1024} MB",
                    "too_large",
                ).message,
            )
            await _send(send, body)
            return True
        chunks.append(chunk)
        more = message.get("more_body", False)
    state = app.state
    await _send(
        send, await respond(state.services, state.his_fast, headers, b"".join(chunks), path_infno)
    )
    return True


async def _send(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", JSON.encode()), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
