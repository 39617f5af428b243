"""`minhu serve` for real: the command on a free loopback port, its keys issued with `minhu
tokens`, and an Open311 client written against the GeoReport v2 spec's field names."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.service.conftest import alarm

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def minhu(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@dataclass
class Live:
    url: str
    data: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "serve", "--port", str(port), "--log-level",
         "warning"],
        cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data / "serve.log").read_text())
            time.sleep(0.2)
        yield Live(url, data)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


class GeoReportClient:
    """A GeoReport v2 client, by the spec alone: discovery, then the endpoint it names."""

    def __init__(self, root: str, api_key: str) -> None:
        discovery = httpx.get(f"{root}/open311/discovery.json").json()
        [endpoint] = [
            e for e in discovery["endpoints"]
            if e["specification"] == "http://wiki.open311.org/GeoReport_v2"
            and "application/json" in e["formats"]
        ]  # fmt: skip
        self.base = endpoint["url"]
        self.api_key = api_key

    def services(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = httpx.get(f"{self.base}/services.json").json()
        return answer

    def service_definition(self, code: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.base}/services/{code}.json").json()
        return answer

    def create(self, **fields: str) -> httpx.Response:
        return httpx.post(f"{self.base}/requests.json", data={"api_key": self.api_key, **fields})

    def request(self, service_request_id: str) -> dict[str, Any]:
        [one] = httpx.get(f"{self.base}/requests/{service_request_id}.json").json()
        return dict(one)

    def requests(self, **query: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = httpx.get(f"{self.base}/requests.json", params=query).json()
        return answer


SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type",
                  "keywords", "group"}  # fmt: skip
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
    "long", "media_url",
}  # fmt: skip


def test_an_open311_client_reports_and_follows_an_issue(live: Live) -> None:
    key = minhu("tokens", "issue", "--client", "city-app", cwd=live.data)
    client = GeoReportClient(live.url, key)
    services = client.services()
    assert services and all(set(s) == SERVICE_FIELDS for s in services)
    assert {"noise", "gas_safety", "sanitation"} <= {s["service_code"] for s in services}
    assert client.service_definition("noise") == {"service_code": "noise", "attributes": []}
    r = client.create(
        service_code="sanitation",
        lat="30.671123",
        long="104.021995",
        description="楼下垃圾三天没人清运",
        first_name="芳",
        last_name="王",
        phone="13812345678",
        email="wangfang@example.cn",
    )
    assert r.status_code == 201, r.text
    [created] = r.json()
    request_id = created["service_request_id"]
    one = client.request(request_id)
    assert set(one) == REQUEST_FIELDS
    assert one["status"] == "open" and one["service_code"] == "sanitation"
    assert one["requested_datetime"].endswith("+00:00")
    listed = client.requests(service_request_id=request_id)
    assert [x["service_request_id"] for x in listed] == [request_id]
    assert request_id in {x["service_request_id"] for x in client.requests(status="open")}
    for text in (json.dumps(one, ensure_ascii=False), json.dumps(listed, ensure_ascii=False)):
        assert "王" not in text and "13812345678" not in text and "wangfang" not in text
    bad = client.create(service_code="sanitation", description="没写地点")
    assert bad.status_code == 400
    assert bad.json() == [
        {"code": 400,
         "description": "a location is required: lat and long, address_string or address_id"}
    ]  # fmt: skip


def test_a_gateway_and_a_grid_worker_over_the_wire(live: Live) -> None:
    gw = minhu("tokens", "issue", "--gateway", "gw-qy-g01", cwd=live.data)
    doc = alarm()
    r = httpx.post(
        f"{live.url}/v1/events",
        content=json.dumps(doc),
        headers={"content-type": "application/cloudevents+json", "authorization": f"Bearer {gw}"},
    )
    assert r.status_code == 200, r.text
    case_id = r.json()["results"][0]["case_id"]
    worker = minhu("tokens", "issue", "--person", "p0015", cwd=live.data)
    r = httpx.post(
        f"{live.url}/v1/cases/{case_id}/acknowledge",
        json={"note": "正在赶往现场"},
        headers={"authorization": f"Bearer {worker}"},
    )
    assert r.status_code == 200, r.text
    listing = minhu("tokens", "list", cwd=live.data)
    key_id = next(line.split()[0] for line in listing.splitlines() if "p0015" in line)
    assert "revoked" in minhu("tokens", "revoke", key_id, cwd=live.data)
    r = httpx.post(
        f"{live.url}/v1/cases/{case_id}/resolve",
        json={"note": "关阀通风"},
        headers={"authorization": f"Bearer {worker}"},
    )
    assert r.status_code == 401
