"""Gateways over HTTP: CloudEvents in the three modes of the HTTP binding, each gateway held
to its own sensors; whatever the door refuses never reaches the engine."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from streams.drivers.ledger import IntakeRecord
from streams.service.http import BATCH, STRUCTURED
from streams.service.ports import NotSent, Verdict
from tests.integration.service.conftest import (
    GATEWAY,
    OTHER_GATEWAY,
    SENSOR,
    Served,
    alarm,
)


def test_structured_alarm_of_its_own_sensor_opens_a_case(served: Served) -> None:
    doc = alarm()
    r = served.client.post(
        "/v1/events",
        content=json.dumps(doc).encode(),
        headers={"content-type": "application/cloudevents+json", **served.auth(GATEWAY)},
    )
    assert r.status_code == 200, r.text
    [res] = r.json()["results"]
    assert res["status"] == "accepted" and res["event_id"] == doc["id"]
    assert res["case_id"] and served.intake.runner.case(res["case_id"]) is not None
    again = served.client.post(
        "/v1/events",
        content=json.dumps(doc).encode(),
        headers={"content-type": "application/cloudevents+json", **served.auth(GATEWAY)},
    )
    assert again.json()["results"][0]["status"] == "duplicate"


def test_binary_mode(served: Served) -> None:
    doc = alarm()
    headers = {f"ce-{k}": v for k, v in doc.items() if k != "data"}
    r = served.client.post(
        "/v1/events",
        content=json.dumps(doc["data"]).encode(),
        headers={"content-type": "application/json", **headers, **served.auth(GATEWAY)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "accepted"


def test_batch_says_per_event_and_is_written_before_the_answer(served: Served) -> None:
    good, also, bad = alarm(), alarm(sensor="qy-gas-liu", alarm_type="gas_leak"), {"x": 1}
    foreign = next(s for s in served.service.registry.sensors.values() if s.gateway != GATEWAY)
    theirs = alarm(sensor=foreign.id, alarm_type=sorted(foreign.alarm_types)[0].value)
    before = served.received
    r = served.client.post(
        "/v1/events",
        content=json.dumps([good, theirs, also, bad]).encode(),
        headers={"content-type": "application/cloudevents-batch+json", **served.auth(GATEWAY)},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "refused", "accepted", "refused"]
    assert [x["event_id"] for x in results[:3]] == [good["id"], theirs["id"], also["id"]]
    assert f"belongs to gateway {foreign.gateway}, not {GATEWAY}" in results[1]["reason"]
    assert results[3]["reason"]
    assert served.received == before + 2  # only the good ones reached the engine
    with served.intake.ledger.engine.connect() as conn:
        written = set(conn.execute(select(IntakeRecord.event_id)).scalars())
    assert {good["id"], also["id"]} <= written and theirs["id"] not in written


def test_another_gateways_sensor_is_forbidden_and_never_decided(served: Served) -> None:
    before = served.received
    r = served.client.post(
        "/v1/events",
        content=json.dumps(alarm(gateway=OTHER_GATEWAY, sensor=SENSOR)).encode(),
        headers={"content-type": "application/cloudevents+json", **served.auth(OTHER_GATEWAY)},
    )
    assert r.status_code == 403, r.text
    assert f"sensor {SENSOR} belongs to gateway {GATEWAY}" in r.json()["results"][0]["reason"]
    # claiming the other gateway's name does not help: the key says who it is
    r = served.client.post(
        "/v1/events",
        content=json.dumps(alarm()).encode(),
        headers={"content-type": "application/cloudevents+json", **served.auth(OTHER_GATEWAY)},
    )
    assert r.status_code == 403
    assert "source" in r.json()["results"][0]["reason"]
    assert served.received == before


def test_bad_input_gets_its_4xx_and_reason(served: Served) -> None:
    before = served.received
    h = {"content-type": "application/cloudevents+json", **served.auth(GATEWAY)}
    cases = [
        (b"{not json", h, 400, "JSON"),
        (json.dumps(alarm(time="yesterday")).encode(), h, 400, "time"),
        (json.dumps(alarm(type="minhu.case.acknowledged")).encode(), h, 400, ""),
        (b"{}", {"content-type": "text/plain", **served.auth(GATEWAY)}, 415, "CloudEvents"),
        (
            b"[]",
            {"content-type": "application/cloudevents-batch+json", **served.auth(GATEWAY)},
            400,
            "empty",
        ),
        (b"x" * (65 * 1024), h, 413, "too large"),
    ]
    for body, headers, status, said in cases:
        r = served.client.post("/v1/events", content=body, headers=headers)
        assert r.status_code == status, (body[:40], r.status_code, r.text)
        assert said in r.text
    assert served.received == before


def test_no_key_or_a_persons_key_is_401(served: Served) -> None:
    for headers in ({}, {"Authorization": "Bearer mh_nope"}, served.auth("p0015")):
        r = served.client.post(
            "/v1/events",
            content=json.dumps(alarm()).encode(),
            headers={"content-type": "application/cloudevents+json", **headers},
        )
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"


def test_a_broker_that_does_not_answer_is_503_to_send_again(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(raw: str | bytes, received_from: str) -> Verdict:
        raise NotSent("KafkaTimeoutError: Timeout after waiting for 30 secs")

    monkeypatch.setattr(served.intake, "submit", down)
    h = {"content-type": "application/cloudevents+json", **served.auth(GATEWAY)}
    r = served.client.post("/v1/events", content=json.dumps(alarm()), headers=h)
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    assert "send it again" in r.json()["detail"]


DEEP = b"[" * 5000 + b"]" * 5000  # 10 KB: Python's json.loads raises RecursionError on it


def test_deep_nesting_is_a_400_with_its_reason_in_every_mode(served: Served) -> None:
    """Nesting deeper than any parser should follow is malformed JSON, told as such, in the
    structured, batch and binary modes — never a 500 (a batch holding one such event is not
    JSON as a whole)."""
    doc = alarm()
    nested = json.dumps({**doc, "data": "DATA"}).encode().replace(b'"DATA"', DEEP)
    binary = {f"ce-{k}": v for k, v in doc.items() if k != "data"}
    before = served.received
    cases = [
        (DEEP, STRUCTURED),
        (nested, STRUCTURED),
        (DEEP, BATCH),
        (b"[" + nested + b"]", BATCH),
        (DEEP, "application/json"),
    ]
    for body, media in cases:
        extra = binary if media == "application/json" else {}
        r = served.client.post(
            "/v1/events",
            content=body,
            headers={"content-type": media, **extra, **served.auth(GATEWAY)},
        )
        assert r.status_code == 400, (media, body[:20], r.status_code, r.text[:300])
        [result] = r.json()["results"]
        assert result["status"] == "refused" and "recursion limit" in result["reason"], result
    assert served.received == before


def test_a_refusal_echoes_at_most_the_start_of_an_id(served: Served) -> None:
    """A 600 KB record is refused for its size; the answer names its id by its first 64
    characters, not all 600 KB of it (nor a reason that quotes a field whole)."""
    from fastapi.testclient import TestClient

    from streams.service.http import create_app

    client = TestClient(create_app(served.service, tick=False))  # the default 4 MiB body cap
    h = {"content-type": STRUCTURED, **served.auth(GATEWAY)}
    big_id = alarm(id="x" * 600_000)
    big_type = alarm(type="minhu." + "y" * 400_000)
    for doc, status in ((big_id, 413), (big_type, 400)):
        r = client.post("/v1/events", content=json.dumps(doc).encode(), headers=h)
        assert r.status_code == status, r.text[:300]
        assert len(r.content) < 2000, r.text[:300]
        [result] = r.json()["results"]
        assert result["status"] == "refused" and result["reason"]
    r = client.post("/v1/events", content=json.dumps(big_id).encode(), headers=h)
    assert r.json()["results"][0]["event_id"] == "x" * 64 + "…"
