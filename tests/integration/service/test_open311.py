"""Open311 GeoReport v2 through TestClient: the spec's fields, its error list, and no personal
data in any answer."""

from __future__ import annotations

from typing import Any

from streams.service.reads import CaseBook
from tests.integration.service.conftest import CALLER, GRID_HEAD, GRID_WORKER, Served
from tests.integration.service.test_responders import act, open_appeal

PERSONAL = ("王芳", "13812345678", "王", "芳", "qy-b0005", "清源路10号")


def post(served: Served, **form: Any) -> Any:
    return served.client.post("/open311/v2/requests.json", data=form)


def assert_error(r: Any, code: int, said: str) -> None:
    assert r.status_code == code, r.text
    [err] = r.json()
    assert set(err) == {"code", "description"} and err["code"] == code
    assert said in err["description"], err


def test_missing_or_wrong_fields_get_the_specs_error_list(served: Served) -> None:
    key = served.keys["app"]
    before = served.received
    good = {"api_key": key, "service_code": "noise", "lat": "30.671123", "long": "104.021995",
            "description": "太吵了"}  # fmt: skip
    assert_error(post(served, **{**good, "api_key": "mh_wrong"}), 403, "api_key")
    assert_error(post(served, **{k: v for k, v in good.items() if k != "api_key"}), 403, "api_key")
    assert_error(post(served, **{k: v for k, v in good.items() if k != "service_code"}), 400,
                 "service_code is required")  # fmt: skip
    assert_error(post(served, **{**good, "service_code": "potholes"}), 400, "'potholes'")
    assert_error(post(served, **{k: v for k, v in good.items() if k not in ("lat", "long")}),
                 400, "location")  # fmt: skip
    assert_error(post(served, **{**good, "long": ""}), 400, "lat and long")
    assert_error(post(served, **{**good, "lat": "north"}), 400, "lat and long")
    assert_error(post(served, **{**good, "description": ""}), 400, "description")
    assert_error(post(served, **{**good, "phone": "call me"}), 400, "phone")
    assert_error(post(served, **{**good, "description": "x" * 5000}), 400, "description")
    r = served.client.post("/open311/v2/requests.json", json=good)
    assert_error(r, 400, "x-www-form-urlencoded")
    assert served.received == before  # nothing reached the engine
    assert_error(served.client.get("/open311/v2/requests/nope.json"), 404, "nope")
    assert_error(served.client.get("/open311/v2/services/potholes.json"), 404, "potholes")
    assert_error(served.client.get("/open311/v2/requests.json?start_date=monday"), 400,
                 "start_date")  # fmt: skip
    assert_error(served.client.get("/open311/v2/requests.json?start_date=2026-11-01T00:00"),
                 400, "offset")  # fmt: skip
    assert_error(served.client.get("/open311/v2/requests.json?status=pending"), 400, "pending")
    assert_error(served.client.post("/open311/v2/requests.json",
                                    content=b"a" * (65 * 1024),
                                    headers={"content-type": "application/x-www-form-urlencoded"}),
                 413, "too large")  # fmt: skip


def test_queries_and_no_personal_data_anywhere(served: Served) -> None:
    first = open_appeal(served)
    second = open_appeal(served, "广场舞音响太吵")
    assert act(served, first, "acknowledge", GRID_HEAD).status_code == 200
    answers = [
        served.client.get(f"/open311/v2/requests/{first}.json"),
        served.client.get(f"/open311/v2/requests.json?service_request_id={first},{second}"),
        served.client.get("/open311/v2/requests.json?status=open&service_code=noise"),
        served.client.get("/open311/v2/requests.json?status=closed"),
        served.client.get(
            "/open311/v2/requests.json?start_date=2000-01-01T00:00:00Z"
            "&end_date=2000-02-01T00:00:00Z"
        ),
    ]
    for a in answers:
        assert a.status_code == 200, a.text
        for word in PERSONAL:
            assert word not in a.text, (word, a.text)
    one = answers[0].json()[0]
    assert one["service_request_id"] == first and one["status"] == "open"
    assert one["service_code"] == "noise" and one["service_name"] == "噪音扰民"
    assert one["status_notes"].endswith("已受理")
    assert {v["service_request_id"] for v in answers[1].json()} == {first, second}
    assert {v["service_request_id"] for v in answers[2].json()} >= {first, second}
    assert answers[3].json() == [] and answers[4].json() == []
    assert CALLER["phone"] not in served.client.get("/open311/v2/services.json").text


def test_the_topics_show_what_the_ledger_shows(served: Served) -> None:
    """On Kafka the views are folded from the dispatch records (CaseBook), on the embedded
    backend read from the ledger (CaseReads): the same lives read the same."""
    book = CaseBook(served.service.rules, served.service.registry)
    served.intake.on_outputs = book.take
    closed, acked, fresh = (
        open_appeal(served),
        open_appeal(served, "广场舞音响太吵"),
        open_appeal(served),
    )
    assert act(served, closed, "acknowledge", GRID_HEAD).status_code == 200
    assert act(served, closed, "resolve", GRID_HEAD, note="已劝导").status_code == 200
    assert act(served, closed, "verify", GRID_WORKER).status_code == 200
    assert act(served, acked, "acknowledge", GRID_HEAD).status_code == 200
    reads = served.service.reads
    assert reads is not None
    for query in ({}, {"statuses": ["closed"]}, {"case_ids": [acked, fresh]}):
        assert book.find(**query) == reads.find(**query), query
    assert {v.status for v in book.find(case_ids=[closed, acked, fresh])} == {"open", "closed"}
    [routed] = [e for e in served.intake.ledger_events(fresh) if e["type"] == "minhu.case.routed"]
    event_id = routed["data"]["origin"]["event_id"]
    assert book.case_of(event_id) == reads.case_of(event_id) == fresh
