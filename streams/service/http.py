"""`minhu serve`: the HTTP doors, on FastAPI, over one `Intake` (embedded or Kafka).

    POST /v1/events                     gateways: CloudEvents (structured, batched, binary)
    POST /v1/cases/{case_id}/{action}   responders: acknowledge, resolve, verify, escalate,
                                        reassign, extension, extension/decide, rate
    POST /v1/ratings                    a caller, with the one-time link of a rating request
    /open311/discovery.json, /open311/v2/...   residents: Open311 GeoReport v2 (open311.py)
    /board, /board/{unit_id}            operations rooms: a unit's live board (board.py)

Every door authenticates with a bearer key (`tokens.py`); who acts is the key's subject, never
a field of the body (a body that names an actor is refused). Whatever a door refuses gets a
4xx with the reason and never reaches the engine or the bus; what it hands in, the engine
decides again with its own authorization, so a refusal there comes back as 403 (unauthorized),
404 (unknown case), 409 (not now: invalid transition, already rated) or 422.

Bodies are capped (`max_body`, 4 MiB by default: 413 with the size), and one record by the wire
contract's `MAX_RECORD_BYTES`.
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from handlers.registry import Registry
from handlers.rules import Rules
from schemas.common import FreeText, Identifier, PhotoUrl
from schemas.lifecycle import (
    CASE_ACKNOWLEDGED,
    CASE_ESCALATION_REQUESTED,
    CASE_EXTENSION_DECIDED,
    CASE_EXTENSION_REQUESTED,
    CASE_REASSIGN_REQUESTED,
    CASE_RESOLVED,
    CASE_VERIFIED,
    RATING_SUBMITTED,
    ExtraDuration,
    Note,
)
from schemas.lifecycle import (
    Verdict as RatingVerdict,
)
from streams.service.board import Board, board_router
from streams.service.embedded import Decided, RatingDue
from streams.service.gateways import (
    ECHOED_REASON_CHARS,
    DoorRefusal,
    batch_records,
    binary_record,
    clipped,
    event_id_of,
    gateway_refusal,
)
from streams.service.ports import Intake, NotSent, Verdict
from streams.service.reads import AppealReads
from streams.service.tokens import Grant, Kind, Tokens

DEFAULT_MAX_BODY = 4 * 1024 * 1024
TICK_SECONDS = 1.0
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

# What an HTTP status says about a refusal, by the dead letter's kind.
STATUS_OF_KIND = {
    "malformed_json": 400,
    "invalid_event": 400,
    "unknown_type": 400,
    "too_large": 413,
    "unauthorized": 403,
    "unknown_case": 404,
    "invalid_transition": 409,
    "already_rated": 409,
}


class LiveIntake(Intake, Protocol):
    # True when a verdict names the case (embedded); False when workers decide later (Kafka).
    decides_at_once: bool

    def tick(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RatingLink:
    """A caller's one-time key to rate a closed case, for whoever delivers it (an SMS sender,
    which finds the phone in the ledger by the case id)."""

    case_id: str
    key: str
    due_by: datetime


@dataclass
class Service:
    """What the doors stand on."""

    intake: LiveIntake
    tokens: Tokens
    rules: Rules
    registry: Registry
    reads: AppealReads | None = None  # Open311 reads: the ledger's, or the dispatch topics'
    deliver: Callable[[RatingLink], None] | None = None
    board: Board | None = None  # the operations rooms' boards

    def rating_due(self, due: RatingDue) -> None:
        """Issue the caller's rating link and hand it on to be delivered."""
        key = self.tokens.issue("rating", due.rater_id, due.case_id)
        if self.deliver is not None:
            self.deliver(RatingLink(due.case_id, key, due.due_by))


# ---- the body cap ------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse a body over `limit` bytes with 413 and its size, before any handler reads it:
    by its Content-Length, or, for a chunked body, once it has grown past the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send, f"{int(declared)} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, send, f"more than {self.limit} bytes")
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, size: str) -> None:
        reason = f"the body is too large: {size}, and the limit is {self.limit} bytes"
        doc: Any = (
            [{"code": 413, "description": reason}]
            if str(scope.get("path", "")).startswith("/open311")
            else {"detail": reason}
        )
        body = json.dumps(doc, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# ---- answers -----------------------------------------------------------------------------------


class EventResult(BaseModel):
    status: Literal["accepted", "duplicate", "refused"]
    event_id: str | None = None
    reason: str | None = None
    case_id: str | None = None


class EventResults(BaseModel):
    results: list[EventResult]


def _reason(text: str | None) -> str | None:
    return None if text is None else clipped(text, ECHOED_REASON_CHARS)


def _id(text: str | None) -> str | None:
    return None if text is None else clipped(text)


def _result(v: Verdict) -> EventResult:
    return EventResult(
        status=v.status, event_id=_id(v.event_id), reason=_reason(v.reason), case_id=v.case_id
    )


def _status_of(v: Verdict) -> int:
    if v.status == "accepted":
        return 200 if isinstance(v, Decided) and v.case_id is not None else 202
    if v.status == "duplicate":
        return 200
    kind = v.kind if isinstance(v, Decided) else None
    return STATUS_OF_KIND.get(kind or "", 422)


def _refused(r: DoorRefusal, event_id: str | None = None) -> EventResult:
    return EventResult(status="refused", event_id=_id(event_id), reason=_reason(r.reason))


def _unauthenticated(what: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"no valid {what} key: send 'Authorization: Bearer <key>'"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


# ---- responders' actions -----------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Body):
    note: Note | None = None


class ResolveBody(_Body):
    note: Note
    photo_urls: Annotated[list[PhotoUrl], Field(max_length=20)] = []


class WhyBody(_Body):
    note: Note = Field(description="Why: the unit cannot solve it at its level")


class ReassignBody(_Body):
    to_unit_id: Identifier | None = None
    note: Note


class ExtensionBody(_Body):
    extra: ExtraDuration
    note: Note


class DecideBody(_Body):
    approved: bool
    note: Note | None = None


class RatingBody(_Body):
    verdict: RatingVerdict
    score: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: FreeText | None = None


class ActionAnswer(BaseModel):
    status: Literal["accepted", "duplicate", "refused"]
    event_id: str | None = None
    case_id: str | None = None
    reason: str | None = None


CaseIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.:\-]*$")]


def _event(type_: str, source: str, data: dict[str, Any]) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": source,
            "type": type_,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        },
        ensure_ascii=False,
    )


def create_app(service: Service, max_body: int = DEFAULT_MAX_BODY, tick: bool = True) -> Any:
    """The ASGI app: FastAPI behind the body cap. `tick=False` leaves the clock alone (a test
    that moves it itself)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_ticking(service.intake)) if tick else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="minhu",
        version="1",
        summary="民呼必应: gateways, residents (Open311 GeoReport v2) and responders",
        lifespan=lifespan,
    )
    bearer = HTTPBearer(auto_error=False)
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

    def grant_of(creds: HTTPAuthorizationCredentials | None, kind: Kind) -> Grant | None:
        return service.tokens.check(creds.credentials if creds else None, kind)

    # ---- gateways ----

    @app.post(
        "/v1/events",
        response_model=EventResults,
        summary="Hand in alarms as CloudEvents (HTTP binding: structured, batched or binary)",
        responses={
            400: {"model": EventResults},
            401: {},
            403: {"model": EventResults},
            413: {},
            415: {},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    STRUCTURED: {"schema": {"type": "object"}},
                    BATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        },
    )
    async def post_events(request: Request, creds: Credentials) -> JSONResponse:
        grant = grant_of(creds, "gateway")
        if grant is None:
            return _unauthenticated("gateway")
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        media = ctype.split(";")[0].strip().lower()
        records: list[str | bytes] | DoorRefusal
        if media == BATCH:
            batch = batch_records(body)
            records = batch if isinstance(batch, DoorRefusal) else list(batch)
        elif media == STRUCTURED:
            records = [body]
        elif any(k.lower().startswith("ce-") for k in request.headers):
            one = binary_record(request.headers, ctype, body)
            records = one if isinstance(one, DoorRefusal) else [one]
        else:
            return JSONResponse(
                {
                    "detail": f"send CloudEvents as {STRUCTURED}, {BATCH}, or in binary mode "
                    f"(ce-* headers and an application/json body), not {clipped(media) or 'no type'!r}"
                },
                status_code=415,
            )
        if isinstance(records, DoorRefusal):
            doc = EventResults(results=[_refused(records)])
            return JSONResponse(doc.model_dump(), status_code=STATUS_OF_KIND.get(records.kind, 400))
        answers = await asyncio.to_thread(_hand_in, service, grant.subject, records)
        results = [r for r, _ in answers]
        status = 200 if media == BATCH else answers[0][1]
        return JSONResponse(EventResults(results=results).model_dump(), status_code=status)

    # ---- responders ----

    def act(type_: str, verb: str, body_model: type[BaseModel], summary: str) -> None:
        async def handler(
            case_id: CaseIdPath,
            body: BaseModel,
            creds: Credentials,
        ) -> JSONResponse:
            grant = grant_of(creds, "person")
            if grant is None:
                return _unauthenticated("person")
            data = {
                "case_id": case_id,
                "actor_id": grant.subject,
                **body.model_dump(exclude_none=True),
            }
            if type_ == RATING_SUBMITTED:
                person = service.registry.people.get(grant.subject)
                data["rater_id"] = person.unit_id if person else grant.subject
            raw = _event(type_, f"/service/person/{grant.subject}", data)
            v = await asyncio.to_thread(service.intake.submit, raw, f"http/person/{grant.subject}")
            return _answer(v)

        handler.__annotations__["body"] = body_model  # what FastAPI reads the body as
        app.post(
            f"/v1/cases/{{case_id}}/{verb}",
            response_model=ActionAnswer,
            summary=summary,
            responses={401: {}, 403: {"model": ActionAnswer}, 404: {"model": ActionAnswer},
                       409: {"model": ActionAnswer}},
        )(handler)  # fmt: skip

    act(CASE_ACKNOWLEDGED, "acknowledge", NoteBody, "Acknowledge a case (受理)")
    act(CASE_RESOLVED, "resolve", ResolveBody, "Report a case resolved (办结), with a note")
    act(CASE_VERIFIED, "verify", NoteBody, "Verify a resolved case on site (核实), closing it")
    act(CASE_ESCALATION_REQUESTED, "escalate", WhyBody, "Ask to escalate a case (上报)")
    act(CASE_REASSIGN_REQUESTED, "reassign", ReassignBody, "Return or forward a case (退单/转派)")
    act(CASE_EXTENSION_REQUESTED, "extension", ExtensionBody, "Ask for more time (申请延期)")
    act(CASE_EXTENSION_DECIDED, "extension/decide", DecideBody, "Decide an extension (审批延期)")
    act(RATING_SUBMITTED, "rate", RatingBody, "Rate the unit above, for one's own unit (下评上)")

    @app.post(
        "/v1/ratings",
        response_model=ActionAnswer,
        summary="A caller rates a closed case with the one-time key of its rating request",
        responses={401: {}, 403: {"model": ActionAnswer}, 409: {"model": ActionAnswer}},
    )
    async def post_rating(body: RatingBody, creds: Credentials) -> JSONResponse:
        grant = grant_of(creds, "rating")
        if grant is None or grant.case_id is None or creds is None:
            return _unauthenticated("rating link")
        data = {
            "case_id": grant.case_id,
            "actor_id": grant.subject,
            "rater_id": grant.subject,
            **body.model_dump(exclude_none=True),
        }
        raw = _event(RATING_SUBMITTED, "/service/rating", data)
        v = await asyncio.to_thread(service.intake.submit, raw, "http/rating")
        if v.status == "accepted" or (isinstance(v, Decided) and v.kind == "already_rated"):
            service.tokens.spend(creds.credentials)
        return _answer(v)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/open311"):
            return open311.error(400, _plain_errors(exc))
        return JSONResponse({"detail": _plain_errors(exc)}, status_code=422)

    @app.exception_handler(NotSent)
    async def not_sent(request: Request, exc: NotSent) -> JSONResponse:
        reason = f"not taken, send it again shortly: the broker did not answer ({exc})"
        if request.url.path.startswith("/open311"):
            answer = open311.error(503, reason)
        else:
            answer = JSONResponse({"detail": reason}, status_code=503)
        answer.headers["Retry-After"] = "5"
        return answer

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith("/open311"):
            return open311.error(exc.status_code, str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    from streams.service import open311

    app.include_router(open311.open311_router(service))
    app.include_router(board_router(service.board, service.registry))
    return BodyLimit(app, max_body)


def _plain_errors(exc: RequestValidationError) -> str:
    """A validation error in words: `field: what is wrong`, one per fault."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())[1:]) or "the request"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def _answer(v: Verdict) -> JSONResponse:
    doc = ActionAnswer(
        status=v.status, event_id=_id(v.event_id), case_id=v.case_id, reason=_reason(v.reason)
    )
    return JSONResponse(doc.model_dump(), status_code=_status_of(v))


def _hand_in(
    service: Service, gateway_id: str, records: list[str | bytes]
) -> list[tuple[EventResult, int]]:
    """Check each record at the door and hand in those that pass, in order: what became of
    each, with the HTTP status it would have alone."""
    now = datetime.now(UTC)
    checked = [
        (raw, gateway_refusal(raw, gateway_id, service.registry, service.rules, now))
        for raw in records
    ]
    passed = [raw for raw, refusal in checked if refusal is None]
    received_from = f"http/{gateway_id}"
    submit_all = getattr(service.intake, "submit_all", None)  # a driver that writes a batch at once
    if submit_all is not None and len(passed) > 1:
        verdicts = iter(submit_all(passed, received_from))
    else:
        verdicts = iter([service.intake.submit(raw, received_from) for raw in passed])
    out: list[tuple[EventResult, int]] = []
    for raw, refusal in checked:
        if refusal is not None:
            out.append((_refused(refusal, event_id_of(raw)), STATUS_OF_KIND.get(refusal.kind, 422)))
        else:
            v = next(verdicts)
            out.append((_result(v), _status_of(v)))
    return out


async def _ticking(intake: LiveIntake) -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        await asyncio.to_thread(intake.tick)
