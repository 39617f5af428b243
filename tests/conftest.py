"""Shared fixtures: the sample registry and rules, compiled once; event builders; databases."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.registry import Registry
from handlers.rules import Rules
from streams.config import default_rules_path, load_registry, load_rules, read_yaml

PG_URL = os.environ.get("MINHU_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="session")
def rules(registry: Registry) -> Rules:
    return load_rules(None, registry)


@pytest.fixture()
def raw_rules() -> Any:
    """A fresh parsed copy of escalation_rules.yaml, for a test to break."""
    return read_yaml(default_rules_path())


class EventFactory:
    """Builds intake events as JSON text, with unique ids and a moving clock."""

    def __init__(self) -> None:
        self.n = 0

    def _env(self, type_: str, data: dict[str, Any], time: str, id_: str | None) -> str:
        self.n += 1
        return json.dumps(
            {
                "specversion": "1.0",
                "id": id_ or f"t-{self.n:06d}",
                "source": "/test",
                "type": type_,
                "time": time,
                "data": data,
            },
            ensure_ascii=False,
        )

    def appeal(
        self,
        text: str = "楼下垃圾没人清运，臭味很大",
        location: dict[str, Any] | None = None,
        time: str = "2026-11-01T09:00:00+08:00",
        category: str | None = None,
        id_: str | None = None,
        channel: str = "hotline_12345",
    ) -> str:
        data: dict[str, Any] = {
            "caller": {"id": "res-1", "name": "王芳", "phone": "13812345678"},
            "channel": channel,
            "text": text,
            "location": location or {"micro_grid_id": "qy-m001"},
        }
        if category:
            data["category"] = category
        return self._env("minhu.appeal.reported", data, time, id_)

    def alarm(
        self,
        sensor_id: str,
        gateway: str,
        alarm_type: str,
        time: str = "2026-11-01T09:00:00+08:00",
        id_: str | None = None,
    ) -> str:
        data = {
            "sensor_id": sensor_id,
            "gateway_id": gateway,
            "alarm_type": alarm_type,
            "reading": 40.0,
            "threshold": 25.0,
            "unit": "%LEL",
        }
        return self._env("minhu.alarm.raised", data, time, id_)

    def patrol(
        self,
        category: str = "sanitation",
        on_spot: bool = False,
        micro_grid: str = "qy-m001",
        time: str = "2026-11-01T09:00:00+08:00",
    ) -> str:
        data = {
            "reporter_id": "p0001",
            "category": category,
            "text": "巡查发现垃圾堆放",
            "photo_urls": ["https://img.example/1.jpg"],
            "location": {"micro_grid_id": micro_grid},
            "handled_on_spot": on_spot,
        }
        return self._env("minhu.patrol.reported", data, time, None)


@pytest.fixture()
def make() -> EventFactory:
    return EventFactory()


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test", connect_timeout=3):
            return None
    except Exception as err:  # any failure means: skip, and say why
        return f"PostgreSQL at 127.0.0.1:5432/test is unreachable ({err.__class__.__name__}: {err})"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty ledger database: a SQLite file, or a new schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    why = _pg_reachable()
    if why:
        pytest.skip(why)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
