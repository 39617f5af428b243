"""Responders act with their own key: the actor is the key's person, never the body's; the
engine's own authorization still decides, and its refusal comes back as 403 with its reason.
A caller rates once, with the one-time link of the rating request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.service.embedded import EmbeddedIntake
from tests.integration.service.conftest import (
    CALLER,
    GRID_HEAD,
    GRID_WORKER,
    OTHER_GRID_WORKER,
    Served,
    alarm,
)


def open_appeal(served: Served, text: str = "楼上噪音扰民，每晚都很吵") -> str:
    """An appeal through Open311, in building qy-b0005 (micro-grid qy-m004, grid qy-g01)."""
    r = served.client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": served.keys["app"],
            "service_code": "noise",
            "address_id": "qy-b0005",
            "description": text,
            **CALLER,
        },
    )
    assert r.status_code == 201, r.text
    case_id: str = r.json()[0]["service_request_id"]
    return case_id


def act(served: Served, case_id: str, verb: str, who: str | None, **body: Any) -> Any:
    headers = served.auth(who) if who else {}
    return served.client.post(f"/v1/cases/{case_id}/{verb}", json=body, headers=headers)


def test_the_actor_is_the_key_holder(served: Served) -> None:
    case_id = open_appeal(served)
    r = act(served, case_id, "acknowledge", GRID_HEAD, note="马上处理")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    state = served.intake.runner.case(case_id)
    assert state is not None and state.status == "acknowledged"
    [updated] = [
        e for e in served.intake.ledger_events(case_id) if e["type"] == "minhu.case.updated"
    ]
    assert updated["data"]["actor_id"] == GRID_HEAD


def test_a_body_naming_an_actor_is_refused_before_the_engine(served: Served) -> None:
    case_id = open_appeal(served)
    before = served.received
    r = act(served, case_id, "acknowledge", OTHER_GRID_WORKER, actor_id=GRID_HEAD)
    assert r.status_code == 422
    assert "actor_id" in r.text
    assert served.received == before


def test_no_key_bad_key_revoked_key_are_401(served: Served) -> None:
    case_id = open_appeal(served)
    before = served.received
    assert act(served, case_id, "acknowledge", None).status_code == 401
    r = served.client.post(
        f"/v1/cases/{case_id}/acknowledge", json={}, headers={"Authorization": "Bearer mh_x"}
    )
    assert r.status_code == 401
    gw = served.client.post(
        f"/v1/cases/{case_id}/acknowledge", json={}, headers=served.auth("gw-qy-g01")
    )
    assert gw.status_code == 401  # a gateway's key is no person's
    key_id = served.service.tokens.check(served.keys[GRID_HEAD], "person")
    assert key_id is not None
    assert served.service.tokens.revoke(key_id.id) == 1
    assert act(served, case_id, "acknowledge", GRID_HEAD).status_code == 401
    assert served.received == before


def test_a_person_who_may_not_act_gets_403_with_the_engines_reason(served: Served) -> None:
    case_id = open_appeal(served)
    r = act(served, case_id, "acknowledge", OTHER_GRID_WORKER)
    assert r.status_code == 403, r.text
    reason = r.json()["reason"]
    assert OTHER_GRID_WORKER in reason and case_id in reason
    assert act(served, "case-000000000000-0000000000", "acknowledge", GRID_HEAD).status_code == 404
    assert act(served, case_id, "verify", GRID_WORKER).status_code == 409  # not resolved yet


def test_the_caller_rates_once_with_the_link(served: Served) -> None:
    case_id = open_appeal(served)
    assert act(served, case_id, "acknowledge", GRID_HEAD).status_code == 200
    assert act(served, case_id, "resolve", GRID_HEAD, note="已劝导").status_code == 200
    assert not served.links
    assert act(served, case_id, "verify", GRID_WORKER).status_code == 200
    [link] = served.links
    assert link.case_id == case_id
    # nobody else can rate: a responder's key is not the caller's link
    r = served.client.post(
        "/v1/ratings", json={"verdict": "satisfied"}, headers=served.auth(GRID_HEAD)
    )
    assert r.status_code == 401
    bearer = {"Authorization": f"Bearer {link.key}"}
    r = served.client.post("/v1/ratings", json={"verdict": "satisfied", "score": 5}, headers=bearer)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    again = served.client.post("/v1/ratings", json={"verdict": "dissatisfied"}, headers=bearer)
    assert again.status_code == 401  # spent: one rating per matter
    recorded = [
        e for e in served.intake.ledger_events(case_id) if e["type"] == "minhu.rating.recorded"
    ]
    assert [e["data"]["verdict"] for e in recorded] == ["satisfied"]
    view = served.client.get(f"/open311/v2/requests/{case_id}.json").json()[0]
    assert (view["status"], view["status_notes"]) == ("closed", "已办结，已评价")


def test_the_wall_clock_fires_deadlines(ledger_url: str, rules: Any, registry: Any) -> None:
    """The service's clock task calls `tick()`: an alarm nobody acknowledges escalates."""
    now = [datetime.now(UTC)]
    intake = EmbeddedIntake(rules, registry, ledger_url, clock=lambda: now[0])
    try:
        v = intake.submit(json.dumps(alarm(time=now[0].isoformat())), "http/gw-qy-g01")
        assert v.status == "accepted" and v.case_id is not None
        intake.tick()
        assert "minhu.case.escalated" not in {e["type"] for e in intake.ledger_events(v.case_id)}
        now[0] += timedelta(hours=3)
        intake.tick()
        types = {e["type"] for e in intake.ledger_events(v.case_id)}
        assert "minhu.case.escalated" in types
    finally:
        intake.close()
