"""Residents' door: Open311 GeoReport v2, with the spec's own field names, in JSON.

    GET  /open311/discovery.json
    GET  /open311/v2/services.json                  the categories of escalation_rules.yaml
    GET  /open311/v2/services/{service_code}.json   (no attributes: `metadata` is false)
    POST /open311/v2/requests.json                  form-encoded; becomes minhu.appeal.reported
    GET  /open311/v2/requests.json                  by service_request_id, service_code,
                                                    status, start_date/end_date
    GET  /open311/v2/requests/{service_request_id}.json

    GET  /open311/v2/tokens/{token}.json            a request's id, from its token

A request's `service_request_id` is its case id. On the embedded backend the answer to a POST
carries it; on Kafka the workers open the case later, so the answer carries a `token` (the
CloudEvent id the service published) and `service_notice` says the id comes later: the client
asks `tokens/{token}.json` until it answers with the `service_request_id` (404 until the
workers have routed it and the service has read the dispatch record, usually within a
second or two), as GeoReport v2 lets a "batch" service do (`type` in services.json). `api_key` is an Open311 client's key (`minhu
tokens issue --client NAME`). The caller's name and phone go to the ledger only; no answer
carries them, nor the address or coordinates given (they may be a home). Errors are the spec's
list: `[{"code": 400, "description": "..."}]`. Only JSON is served (discovery says so); XML,
`media_url` and service attributes are not supported.
"""

import asyncio
import json
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from handlers.intake import parse_input
from schemas import APPEAL_REPORTED, EventRejected
from streams.service.gateways import ECHOED_REASON_CHARS, clipped
from streams.service.http import Service
from streams.service.reads import CaseView

SPEC = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
FORM = "application/x-www-form-urlencoded"
# The POST fields of the spec (those minhu reads; the rest are accepted and ignored).
POST_FIELDS: dict[str, dict[str, Any]] = {
    "api_key": {"type": "string"},
    "jurisdiction_id": {"type": "string"},
    "service_code": {"type": "string"},
    "lat": {"type": "number"},
    "long": {"type": "number"},
    "address_string": {"type": "string"},
    "address_id": {"type": "string"},
    "email": {"type": "string"},
    "device_id": {"type": "string"},
    "account_id": {"type": "string"},
    "first_name": {"type": "string"},
    "last_name": {"type": "string"},
    "phone": {"type": "string"},
    "description": {"type": "string"},
    "media_url": {"type": "string"},
}


def error(code: int, description: str) -> JSONResponse:
    text = clipped(description, ECHOED_REASON_CHARS)  # it may quote what it was sent
    return JSONResponse([{"code": code, "description": text}], status_code=code)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "[{code, description}]"},
    403: {"description": "[{code, description}]"},
    404: {"description": "[{code, description}]"},
}


def _time(text: str | None, name: str) -> datetime | str | None:
    """A W3C date and time with its offset, or why not."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return f"{name} is not a date and time (W3C format, like 2026-11-01T09:00:00+08:00)"
    if t.tzinfo is None:
        return f"{name} needs its UTC offset, like 2026-11-01T09:00:00+08:00"
    return t


def _name(first: str | None, last: str | None) -> str | None:
    """A Chinese name is family name first (王 + 芳 = 王芳); others given name first."""
    parts = [p.strip() for p in (first, last) if p and p.strip()]
    if not parts:
        return None
    han = all(unicodedata.name(c, "").startswith("CJK") for p in parts for c in p)
    return "".join(reversed(parts)) if han and first and last else " ".join(parts)


def _caller_id() -> str:
    """A new caller id for each request: who may rate this case (its link is bound to it).
    Never derived from the phone or e-mail: the ratings topic carries a digest of this id,
    and a digest of a phone number is undone by trying every number."""
    return f"open311-{uuid.uuid4().hex[:20]}"


def _view(v: CaseView) -> dict[str, Any]:
    return {
        "service_request_id": v.case_id,
        "status": v.status,
        "status_notes": v.status_notes,
        "service_name": v.category_name,
        "service_code": v.category,
        "description": v.description,
        "agency_responsible": v.unit_name,
        "service_notice": None,
        "requested_datetime": v.requested.isoformat(),
        "updated_datetime": v.updated.isoformat(),
        "expected_datetime": v.expected.isoformat() if v.expected else None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def open311_router(service: Service) -> APIRouter:
    r = APIRouter(tags=["Open311 GeoReport v2"])
    realtime = service.intake.decides_at_once

    @r.get("/open311/discovery.json", summary="Service discovery")
    async def discovery(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "changeset": "2026-12-01T00:00:00Z",
                "contact": "the street operations centre (街道运行中心)",
                "key_service": "minhu tokens issue --client NAME",
                "endpoints": [
                    {
                        "specification": SPEC,
                        "url": f"{base}/open311/v2",
                        "changeset": "2026-12-01T00:00:00Z",
                        "type": "production",
                        "formats": ["application/json"],
                    }
                ],
            }
        )

    def services() -> list[dict[str, Any]]:
        return [
            {
                "service_code": c.id,
                "service_name": c.name,
                "description": f"{c.name}: first handled by the {c.tier.value.replace('_', '-')}",
                "metadata": False,
                "type": "realtime" if realtime else "batch",
                "keywords": "",
                "group": c.tier.value,
            }
            for c in service.rules.categories.values()
        ]

    @r.get("/open311/v2/services.json", summary="The services: minhu's categories")
    async def get_services(jurisdiction_id: str | None = None) -> JSONResponse:
        return JSONResponse(services())

    @r.get(
        "/open311/v2/services/{service_code}.json",
        summary="A service's definition (no attributes)",
        responses=ERRORS,
    )
    async def get_service(
        service_code: Annotated[str, Path(max_length=128)], jurisdiction_id: str | None = None
    ) -> JSONResponse:
        if service_code not in service.rules.categories:
            return error(404, f"no service {service_code!r}: see services.json")
        return JSONResponse({"service_code": service_code, "attributes": []})

    @r.post(
        "/open311/v2/requests.json",
        summary="Report an issue (form-encoded, as GeoReport v2 says)",
        status_code=201,
        responses=ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    FORM: {
                        "schema": {
                            "type": "object",
                            "properties": POST_FIELDS,
                            "required": ["api_key", "service_code"],
                        }
                    }
                },
            }
        },
    )
    async def post_request(request: Request) -> JSONResponse:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != FORM:
            return error(400, f"send the request as {FORM}, not {media or 'no type'!r}")
        try:
            raw_form = await request.form()
        except Exception as err:  # the form parser's errors have no common class
            return error(400, f"the form cannot be read: {err}")
        form: dict[str, str] = {}
        for k, value in raw_form.multi_items():
            if not isinstance(value, str):
                return error(400, f"{k} must be text, not a file")
            form[k] = value.strip()
        grant = service.tokens.check(form.get("api_key"), "client")
        if grant is None:
            return error(403, "api_key is missing or not valid: ask for one (key_service)")
        code = form.get("service_code")
        if not code:
            return error(400, "service_code is required: see services.json")
        if code not in service.rules.categories:
            return error(400, f"service_code {code!r} is not a service here: see services.json")
        location: dict[str, Any] = {}
        if form.get("lat") or form.get("long"):
            try:
                location = {"lat": float(form["lat"]), "lon": float(form["long"])}
            except (KeyError, ValueError):
                return error(400, "lat and long must both be given, as decimal degrees")
        elif form.get("address_id"):
            location = {"building_id": form["address_id"]}
        elif form.get("address_string"):
            location = {"address": form["address_string"]}
        else:
            return error(400, "a location is required: lat and long, address_string or address_id")
        if not form.get("description"):
            return error(400, "description is required: say what is wrong")
        caller: dict[str, Any] = {"id": _caller_id()}
        name = _name(form.get("first_name"), form.get("last_name"))
        if name:
            caller["name"] = name
        if form.get("phone"):
            caller["phone"] = form["phone"]
        now = datetime.now(UTC)
        raw = json.dumps(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": f"/open311/{grant.subject}",
                "type": APPEAL_REPORTED,
                "time": now.isoformat(),
                "data": {
                    "caller": caller,
                    "channel": "app",
                    "text": form["description"],
                    "category": code,
                    "location": location,
                },
            },
            ensure_ascii=False,
        )
        received_from = f"open311/{grant.subject}"
        checked = parse_input(raw, received_from, None, now)
        if isinstance(checked, EventRejected):
            return error(400, _in_open311_words(checked.data.reason))
        v = await _submit(service, raw, received_from)
        if v.status == "refused":
            return error(400, v.reason or "refused")
        notice = "已受理，请记下编号以便查询" if v.case_id else "已收到，编号稍后可查"
        answer: dict[str, Any] = {"service_notice": notice, "account_id": None}
        if v.case_id:
            answer = {"service_request_id": v.case_id, **answer}
        else:
            answer = {"token": v.event_id, **answer}
        return JSONResponse([answer], status_code=201)

    @r.get("/open311/v2/requests.json", summary="Find service requests", responses=ERRORS)
    async def get_requests(
        service_request_id: Annotated[str | None, Query(max_length=20000)] = None,
        service_code: Annotated[str | None, Query(max_length=2000)] = None,
        start_date: str | None = None,
        end_date: str | None = None,
        status: str | None = None,
        jurisdiction_id: str | None = None,
    ) -> JSONResponse:
        if service.reads is None:
            return error(501, "requests cannot be read back in this deployment")
        if service_request_id is not None:
            ids = [i.strip() for i in service_request_id.split(",") if i.strip()]
            views = service.reads.find(case_ids=ids[:MAX_REQUESTS])
            return JSONResponse([_view(v) for v in views])
        statuses = None
        if status is not None:
            statuses = [s.strip() for s in status.split(",") if s.strip()]
            wrong = [s for s in statuses if s not in ("open", "closed")]
            if wrong:
                return error(400, f"status is open or closed, not {', '.join(wrong)}")
        start, end = _time(start_date, "start_date"), _time(end_date, "end_date")
        for t in (start, end):
            if isinstance(t, str):
                return error(400, t)
        assert not isinstance(start, str) and not isinstance(end, str)
        if start is not None and end is not None and start > end:
            return error(400, "start_date is after end_date")
        if start is None:
            start = (end or datetime.now(UTC)) - DEFAULT_SPAN
        codes = [c.strip() for c in service_code.split(",")] if service_code else None
        views = service.reads.find(
            categories=codes, statuses=statuses, since=start, until=end, limit=MAX_REQUESTS
        )
        return JSONResponse([_view(v) for v in views])

    @r.get(
        "/open311/v2/requests/{service_request_id}.json",
        summary="One service request",
        responses=ERRORS,
    )
    async def get_request(
        service_request_id: Annotated[str, Path(max_length=64)],
        jurisdiction_id: str | None = None,
    ) -> JSONResponse:
        if service.reads is None:
            return error(501, "requests cannot be read back in this deployment")
        views = service.reads.find(case_ids=[service_request_id])
        if not views:
            return error(404, f"no service request {service_request_id!r}")
        return JSONResponse([_view(views[0])])

    @r.get(
        "/open311/v2/tokens/{token}.json",
        summary="The service request id of a request's token",
        responses=ERRORS,
    )
    async def get_token(
        token: Annotated[str, Path(max_length=200)], jurisdiction_id: str | None = None
    ) -> JSONResponse:
        if service.reads is None:
            return error(501, "requests cannot be read back in this deployment")
        case_id = await asyncio.to_thread(service.reads.case_of, token)
        if case_id is None:
            return error(404, f"no service request for token {token!r} yet: ask again shortly")
        return JSONResponse([{"service_request_id": case_id, "token": token}])

    return r


async def _submit(service: Service, raw: str, received_from: str) -> Any:
    return await asyncio.to_thread(service.intake.submit, raw, received_from)


def _in_open311_words(reason: str) -> str:
    """The contract's reason, with its field paths named as the form's fields."""
    for ours, theirs in (
        ("data.text", "description"),
        ("data.caller.phone", "phone"),
        ("data.caller.name", "first_name/last_name"),
        ("data.location.address", "address_string"),
        ("data.location.building_id", "address_id"),
        ("data.location.lat", "lat"),
        ("data.location.lon", "long"),
    ):
        reason = reason.replace(ours, theirs)
    return reason
