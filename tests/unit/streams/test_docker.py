"""docker/ cannot run here (no Docker engine): parse the files and check their wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from prometheus_client import REGISTRY

import streams.drivers.kafka.metrics  # noqa: F401  (registers the metrics)
from streams.drivers.kafka.settings import ENV_PREFIX, WorkerSettings, settings_from

DOCKER = Path(__file__).resolve().parents[3] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return doc


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "topics", "worker", "postgres", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(env)  # KRaft mode
    assert services["worker"]["command"] == ["worker"]
    assert services["topics"]["command"][:2] == ["topics", "create"]
    build = services["topics"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).exists()


def test_worker_settings_match_the_cli(compose: dict[str, Any]) -> None:
    """Every MINHU_* variable is a worker setting (= a CLI flag), and the values validate."""
    for name in ("worker", "topics"):
        env = compose["services"][name]["environment"]
        fields = {ENV_PREFIX + f.upper() for f in WorkerSettings.model_fields}
        assert set(env) <= fields, set(env) - fields
        overrides = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items()}
        settings = settings_from(overrides)
        assert settings.broker == "kafka:9092"
    worker = settings_from(
        {
            k[len(ENV_PREFIX) :].lower(): v
            for k, v in compose["services"]["worker"]["environment"].items()
        }
    )
    topics_env = compose["services"]["topics"]["environment"]
    assert worker.partitions == int(topics_env["MINHU_PARTITIONS"])
    assert worker.app_id == topics_env["MINHU_APP_ID"]
    assert worker.store.startswith("rocksdb")


def test_worker_reaches_kafka_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["worker"]["environment"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{env['MINHU_BROKER']}" in advertised
    ledger = urlparse(env["MINHU_LEDGER"])
    pg = services["postgres"]["environment"]
    assert ledger.hostname == "postgres" and ledger.port == 5432
    assert (ledger.username, ledger.password, ledger.path.lstrip("/")) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    deps = services["worker"]["depends_on"]
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["topics"]["condition"] == "service_completed_successfully"


def test_prometheus_scrapes_the_workers(compose: dict[str, Any]) -> None:
    env = compose["services"]["worker"]["environment"]
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    [job] = prom["scrape_configs"]
    [sd] = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == int(env["MINHU_METRICS_PORT"])
    assert str(sd["port"]) in compose["services"]["worker"]["expose"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert any(m.startswith("./prometheus.yml:") for m in mounts)


def test_grafana_dashboard_uses_real_metrics(compose: dict[str, Any]) -> None:
    ds = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    assert "9090:9090" in compose["services"]["prometheus"]["ports"]
    dash = json.loads((DOCKER / "grafana/dashboards/minhu.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(minhu_[a-z_]+)", e)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    known = {f.name + sfx for f in REGISTRY.collect() for sfx in suffixes.get(f.type, ("",))}
    assert used and used <= known, used - known
    for wanted in (
        "minhu_events_in_total",
        "minhu_routing_latency_seconds_bucket",
        "minhu_dead_letters_total",
        "minhu_duplicates_total",
        "minhu_escalations_total",
        "minhu_open_cases",
        "minhu_sla_breaches_total",
    ):
        assert wanted in used, wanted
