"""`minhu serve --broker` reads back what the workers publish: a command on a free loopback
port, over fresh topics of the test broker. A resident's appeal as the engine routes it is on
the dispatch topic before the service starts (its history), its acknowledgement comes after
(live); the unit's board and Open311 show both, and no answer names the caller."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CaseRouted, CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import CE_HEADERS, Topics
from tests.integration.kafka_helpers import Deployment, Worker, free_port

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 60  # generous: a loaded 2-core machine is slow, not stuck
PHONE, NAME = "13812345678", "王芳"


def appeal() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/open311/test-app",
        "type": "minhu.appeal.reported",
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "caller": {"id": f"open311-{uuid.uuid4().hex[:20]}", "name": NAME, "phone": PHONE},
            "channel": "app",
            "text": f"楼上装修噪音，电话{PHONE}",
            "category": "noise",
            "location": {"lat": 30.671123, "lon": 104.021995},
        },
    }


def acknowledge(case_id: str, person: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/service/person/{person}",
        "type": "minhu.case.acknowledged",
        "time": datetime.now(UTC).isoformat(),
        "data": {"case_id": case_id, "actor_id": person},
    }


def publish(broker: str, topics: Topics, events: Iterable[CloudEvent]) -> None:
    """Put outputs where the workers put them (Topics.records_for)."""
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    try:
        for ev in events:
            for rec in topics.records_for(ev):
                producer.send(
                    rec.topic,
                    key=rec.key.encode() if rec.key else None,
                    value=ev.model_dump_json(exclude_none=True).encode(),
                    headers=CE_HEADERS,
                )
        producer.flush(30)
    finally:
        producer.close()


def until(what: str, check: Callable[[], Any], log: Path) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"not in {WAIT_S} s: {what}\n{log.read_text(errors='replace')[-3000:]}")


def boards(url: str) -> Iterator[dict[str, Any] | None]:
    """A unit's board each time the service sends it (server-sent events); None for any other
    line (the stream's keep-alive pings), so a reader can watch its clock."""
    with httpx.stream("GET", url, timeout=httpx.Timeout(WAIT_S)) as r:
        assert r.status_code == 200, r.read()
        event = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            if line.startswith("data:") and event == "board":
                yield json.loads(line.split(":", 1)[1])
            else:
                yield None


def board_where(
    stream: Iterator[dict[str, Any] | None], check: Callable[[dict[str, Any]], bool], log: Path
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    for board in stream:
        if board is not None and check(board):
            return board
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no such board in {WAIT_S} s\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def serving(dep: Deployment, folder: Path) -> Iterator[tuple[str, Path]]:
    """`minhu serve --broker` on a free loopback port, once it has read the topics' history:
    its base URL and its log."""
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "serve", "--broker", dep.broker, "--port",
             str(port), "--data-dir", str(folder), "--log-level", "warning"],
            cwd=folder, env={**dep.env(), "PYTHONPATH": str(REPO)}, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        try:
            return httpx.get(f"{base}/openapi.json", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        # two things, either first: the reader's history is handed on, and uvicorn listens
        until("the service's history read", lambda: b"history" in log.read_bytes(), log)
        until("the service listening", listening, log)
        yield base, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_board_and_open311_read_the_dispatch_topics(
    broker: str, tmp_path: Path, rules: Rules, registry: Registry
) -> None:
    dep = Deployment(broker, partitions=1)
    dep.create_topics()
    outputs: list[CloudEvent] = []
    runner = EmbeddedRunner(
        rules, registry, clock=lambda: datetime.now(UTC), on_event=outputs.append
    )
    first = appeal()
    runner.feed(json.dumps(first, ensure_ascii=False), "open311/test-app", 1)
    routed = next(o for o in outputs if isinstance(o, CaseRouted))
    case_id, unit_id = routed.data.case_id, routed.data.unit_id
    assert routed.data.status == "open"
    publish(broker, dep.topics, outputs)  # the history, before the service starts

    with serving(dep, tmp_path) as (base, log):
        stream = boards(f"{base}/board/{unit_id}/events")
        board = board_where(stream, lambda b: True, log)
        assert [x["case_id"] for x in board["waiting"]] == [case_id]

        def request() -> dict[str, Any]:
            r = httpx.get(f"{base}/open311/v2/requests/{case_id}.json", timeout=10)
            assert r.status_code == 200, r.text
            assert PHONE not in r.text and NAME not in r.text
            return dict(r.json()[0])

        seen = request()
        assert seen["status"] == "open" and seen["service_code"] == "noise"
        token = httpx.get(f"{base}/open311/v2/tokens/{first['id']}.json", timeout=10)
        assert token.json() == [{"service_request_id": case_id, "token": first["id"]}]

        # live: the unit acknowledges it, the workers publish the update
        person = next(p.id for p in registry.people.values() if p.unit_id == unit_id)
        outputs.clear()
        runner.feed(json.dumps(acknowledge(case_id, person)), f"http/person/{person}", 2)
        assert outputs, "the engine took the acknowledgement"
        publish(broker, dep.topics, outputs)
        board = board_where(stream, lambda b: not b["waiting"], log)  # it left the waiting list
        assert PHONE not in json.dumps(board, ensure_ascii=False)
        notes = until(
            "the acknowledgement in Open311", lambda: "已受理" in request()["status_notes"], log
        )
        assert notes


def test_a_published_request_gets_its_case_from_the_workers(broker: str, tmp_path: Path) -> None:
    """The whole way: an Open311 request is published, a real worker routes it, and the token
    the POST answered with leads to the case; the grid's board shows it."""
    dep = Deployment(broker, partitions=1)
    dep.create_topics()
    (tmp_path / "worker").mkdir()  # its ledger of its own, as in compose
    worker = Worker(dep, tmp_path / "worker", "worker", PYTHONPATH=str(REPO))
    try:
        worker.wait_ready(WAIT_S)
        with serving(dep, tmp_path) as (base, log):
            done = subprocess.run(
                [sys.executable, "-m", "streams.cli", "tokens", "issue", "--client", "app",
                 "--data-dir", str(tmp_path)],
                env={**dep.env(), "PYTHONPATH": str(REPO)}, cwd=tmp_path, capture_output=True,
                text=True, timeout=60, check=True,
            )  # fmt: skip
            form = {"api_key": done.stdout.strip(), "service_code": "noise",
                    "address_id": "qy-b0005", "description": "楼上噪音扰民",
                    "first_name": "芳", "last_name": "王", "phone": PHONE}  # fmt: skip
            r = httpx.post(f"{base}/open311/v2/requests.json", data=form, timeout=30)
            assert r.status_code == 201, r.text
            [answer] = r.json()
            assert "service_request_id" not in answer  # the workers have not decided yet
            token = answer["token"]

            def case_of_token() -> str | None:
                t = httpx.get(f"{base}/open311/v2/tokens/{token}.json", timeout=10)
                assert t.status_code in (200, 404), t.text
                return str(t.json()[0]["service_request_id"]) if t.status_code == 200 else None

            case_id = until("the token's case", case_of_token, log)
            seen = httpx.get(f"{base}/open311/v2/requests/{case_id}.json", timeout=10)
            assert seen.json()[0]["status"] == "open", seen.text
            assert PHONE not in seen.text and NAME not in seen.text
            board = board_where(
                boards(f"{base}/board/qy-g01/events"),  # building qy-b0005's grid
                lambda b: case_id in {x["case_id"] for x in b["waiting"]},
                log,
            )
            assert PHONE not in json.dumps(board, ensure_ascii=False)
    finally:
        worker.stop()
