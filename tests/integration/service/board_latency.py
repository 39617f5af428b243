"""Board update latency, as a program (not a test): how long from an alarm handed in to the
grid's board showing the change, in Debian's chromium, on `minhu serve --mqtt`.

For each of N alarms (one at a time, round the five sensors of gateway gw-qy-g01: the first
of a sensor opens a case, the next ones join its storm, and either changes the board):
- over HTTP: the gateway door answers once the engine has decided and written the record;
  `decided -> shown` is from that answer to the page's re-render (negative when the push beats
  the HTTP answer), `posted -> shown` from before the POST;
- over MQTT: from the PUBACK of a QoS 1 publish to the re-render.

    PYTHONPATH=. python tests/integration/service/board_latency.py [N]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.integration.mqtt_helpers import Gateway, wait_for
from tests.integration.service.test_board import CHROMIUM, GATEWAY, GRID
from tests.integration.service.test_live import REPO, _free_port, minhu

SENSORS = [("qy-smoke-001", "smoke"), ("qy-fall-002", "fall"), ("qy-gas-003", "gas_leak"),
           ("qy-smoke-004", "smoke"), ("qy-gas-liu", "gas_leak")]  # fmt: skip
RENDERS = """
window.renders = [];
new MutationObserver(() => window.renders.push(performance.timeOrigin + performance.now()))
  .observe(document.getElementById("waiting"), { childList: true });
"""


def alarm(i: int) -> str:
    sensor, kind = SENSORS[i % len(SENSORS)]
    return json.dumps(
        {"specversion": "1.0", "id": f"lat-{uuid.uuid4().hex[:12]}",
         "source": f"/gateway/{GATEWAY}", "type": "minhu.alarm.raised",
         "time": datetime.now(UTC).isoformat(),
         "data": {"sensor_id": sensor, "gateway_id": GATEWAY, "alarm_type": kind,
                  "reading": 40.0 + i, "threshold": 25.0}}
    )  # fmt: skip


def next_render(page: Page, seen: int) -> float:
    wait_for(lambda: page.evaluate("window.renders.length") > seen, 30, "the board's re-render")
    return float(page.evaluate(f"window.renders[{seen}]"))


def figures(name: str, ms: list[float]) -> None:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"{name:28} n={len(ms)}  p50 {q[49]:7.1f} ms  p99 {q[98]:7.1f} ms  max {max(ms):7.1f} ms")


def main(n: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="board-latency-"))
    port, root = _free_port(), f"minhu-bench/{uuid.uuid4().hex[:12]}"
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "serve", "--port", str(port), "--log-level",
         "warning", "--mqtt", "127.0.0.1:1883", "--mqtt-topic-root", root,
         "--mqtt-client-id", f"lat-{uuid.uuid4().hex[:12]}"],
        cwd=data, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "MQTT subscribed" in (data / "serve.log").read_text(), 60, "serve")
        key = minhu("tokens", "issue", "--gateway", GATEWAY, cwd=data)
        auth = {"authorization": f"Bearer {key}", "content-type": "application/cloudevents+json"}
        gateway = Gateway(f"lat-{uuid.uuid4().hex[:12]}")
        with sync_playwright() as pw, httpx.Client() as http:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            page.goto(f"{url}/board/{GRID}")
            page.wait_for_selector("#link.up", timeout=30_000)
            page.evaluate(RENDERS)
            decided, posted, mqtt = [], [], []
            for i in range(n):
                seen = page.evaluate("window.renders.length")
                before = time.time() * 1000
                r = http.post(f"{url}/v1/events", content=alarm(i), headers=auth)
                answered = time.time() * 1000
                assert r.status_code == 200, r.text
                shown = next_render(page, seen)
                decided.append(shown - answered)
                posted.append(shown - before)
            for i in range(n):
                seen = page.evaluate("window.renders.length")
                gateway.publish(f"{root}/gateways/{GATEWAY}/alarms", alarm(i))
                acked = time.time() * 1000
                mqtt.append(next_render(page, seen) - acked)
            browser.close()
        gateway.close()
        figures("HTTP decided -> shown", decided)
        figures("HTTP posted -> shown", posted)
        figures("MQTT PUBACK -> shown", mqtt)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
