"""Closed by default: the worker's and the MQTT bridge's metrics listen on 127.0.0.1 unless
told otherwise (`--metrics-host`, MINHU_METRICS_HOST)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from handlers.registry import Registry
from handlers.rules import Rules
from streams.cli import build_parser
from streams.cli.common import worker_settings


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINHU_METRICS_HOST", raising=False)
    monkeypatch.delenv("MINHU_METRICS_PORT", raising=False)


def test_the_worker_binds_its_metrics_to_loopback(
    tmp_path: Path, rules: Rules, registry: Registry
) -> None:
    from streams.drivers.kafka.worker import MinhuWorker

    args = build_parser().parse_args(["worker", "--data-dir", str(tmp_path)])
    s = worker_settings(args)
    assert s.metrics_host == "127.0.0.1"
    app = MinhuWorker(s.model_copy(update={"metrics_port": None}), rules, registry, 4).app
    assert app.conf.web_bind == "127.0.0.1"
    told = build_parser().parse_args(["worker", "--metrics-host", "0.0.0.0"])
    assert worker_settings(told).metrics_host == "0.0.0.0"


def test_the_bridge_binds_its_metrics_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    import prometheus_client

    from streams.cli.mqtt import serve_metrics

    served: list[tuple[int, str]] = []

    def fake(port: int, addr: str = "0.0.0.0", **_: Any) -> None:  # prometheus' own default
        served.append((port, addr))

    monkeypatch.setattr(prometheus_client, "start_http_server", fake)
    for argv, addr in (
        ([], "127.0.0.1"),
        (["--metrics-host", "0.0.0.0"], "0.0.0.0"),
    ):
        args = build_parser().parse_args(["mqtt-bridge", "--metrics-port", "9999", *argv])
        serve_metrics(args, worker_settings(args))
        assert served.pop() == (9999, addr)
    args = build_parser().parse_args(["mqtt-bridge"])
    serve_metrics(args, worker_settings(args))
    assert served == []  # no --metrics-port: no listener at all
