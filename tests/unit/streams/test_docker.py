"""docker/ cannot run here (no Docker engine): parse the files and check their wiring, and that
the stack is closed by default (compose_checks.py). Every check is also run on a broken copy,
to see it fail."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from prometheus_client import REGISTRY

import streams.drivers.kafka.metrics  # noqa: F401  (registers the metrics)
from schemas import Tier
from streams.drivers.kafka.worker import OpenCases
from streams.topics import Topics
from tests.conftest import PG_URL
from tests.unit.streams import compose_checks as cc

DOCKER = Path(__file__).resolve().parents[3] / "docker"
ROOT = DOCKER.parent


def text(name: str) -> str:
    return (DOCKER / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(text("compose.yaml"))
    return doc


@pytest.fixture()
def compose(compose_doc: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy for each test, free to break."""
    return copy.deepcopy(compose_doc)


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return cc.example_variables(text(".env.example"))


def svc(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return cc.services(doc)[name]


def env(doc: dict[str, Any], name: str) -> dict[str, Any]:
    e: dict[str, Any] = svc(doc, name)["environment"]
    return e


# ---- wiring -----------------------------------------------------------------------------------


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "kafka-init", "topics", "worker", "postgres", "prometheus", "grafana",
            "service", "mosquitto", "mqtt-bridge"} <= set(services)  # fmt: skip
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert services["kafka-init"]["image"] == kafka["image"]  # its CLI tools
    kenv = kafka["environment"]
    assert "controller" in kenv["KAFKA_PROCESS_ROLES"] and "broker" in kenv["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(kenv)  # KRaft mode
    assert services["worker"]["command"] == ["worker"]
    assert services["topics"]["command"][:2] == ["topics", "create"]
    build = services["topics"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).exists()
    for name, mounts in (("kafka-init", "kafka-init.sh"), ("postgres", "postgres-init.sql")):
        [source] = [m.split(":")[0] for m in services[name]["volumes"] if mounts in m]
        assert (DOCKER / source).is_file()


def test_start_order(compose: dict[str, Any]) -> None:
    """Broker healthy → users and ACLs → topics (as admin) → workers."""
    deps = {n: s.get("depends_on", {}) for n, s in compose["services"].items()}
    assert deps["kafka-init"]["kafka"]["condition"] == "service_healthy"
    assert deps["topics"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert deps["worker"]["topics"]["condition"] == "service_completed_successfully"
    assert deps["worker"]["postgres"]["condition"] == "service_healthy"
    assert env(compose, "topics")["MINHU_SASL_USERNAME"] == "admin"


def test_worker_reaches_kafka_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    wenv = env(compose, "worker")
    advertised = env(compose, "kafka")["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{wenv['MINHU_BROKER']}" in advertised
    ledger = urlparse(wenv["MINHU_LEDGER"])
    assert ledger.hostname == "postgres" and ledger.port == 5432
    assert ledger.path.lstrip("/") == env(compose, "postgres")["POSTGRES_DB"]
    assert ledger.password is None
    assert wenv["PGPASSWORD"] == env(compose, "postgres")["LEDGER_WORKER_PASSWORD"]
    nets = {n: set(s["networks"]) for n, s in services.items() if "networks" in s}
    assert nets["worker"] & nets["kafka"] and nets["worker"] & nets["postgres"]
    assert nets["topics"] & nets["kafka"]
    assert compose["networks"]["ledger"]["internal"] is True


def test_prometheus_scrapes_the_workers(compose: dict[str, Any]) -> None:
    wenv = env(compose, "worker")
    prom = yaml.safe_load(text("prometheus.yml"))
    [job] = prom["scrape_configs"]
    [sd] = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == int(wenv["MINHU_METRICS_PORT"])
    assert str(sd["port"]) in svc(compose, "worker")["expose"]
    assert wenv["MINHU_METRICS_HOST"] == "0.0.0.0"  # inside its container, for Prometheus
    assert set(svc(compose, "prometheus")["networks"]) & set(svc(compose, "worker")["networks"])
    mounts = svc(compose, "prometheus")["volumes"]
    assert any(m.startswith("./prometheus.yml:") for m in mounts)


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian: apt-get install prometheus)",
)
def test_promtool_accepts_the_prometheus_config() -> None:
    done = subprocess.run(
        ["promtool", "check", "config", str(DOCKER / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_dashboard_uses_real_metrics(compose: dict[str, Any]) -> None:
    ds = yaml.safe_load(text("grafana/provisioning/datasources/prometheus.yml"))
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    assert set(svc(compose, "grafana")["networks"]) & set(svc(compose, "prometheus")["networks"])
    dash = json.loads(text("grafana/dashboards/minhu.json"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(minhu_[a-z_]+)", e)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    # minhu_open_cases is collected from a running worker's engines (worker.OpenCases)
    families = [*REGISTRY.collect(), *OpenCases(SimpleNamespace(parts={})).collect()]  # type: ignore[arg-type]
    known = {f.name + sfx for f in families for sfx in suffixes.get(f.type, ("",))}
    assert used and used <= known, used - known
    for wanted in (
        "minhu_events_in_total",
        "minhu_routing_latency_seconds_bucket",
        "minhu_dead_letters_total",
        "minhu_duplicates_total",
        "minhu_escalations_total",
        "minhu_open_cases",
        "minhu_sla_breaches_total",
        "minhu_life_safety_total",
    ):
        assert wanted in used, wanted


# ---- closed by default: each check passes on the real files, fails on a broken copy -----------


def test_nothing_is_published_beyond_the_loopback(compose: dict[str, Any]) -> None:
    assert cc.published_beyond_loopback(compose) == []
    assert not svc(compose, "prometheus").get("ports")  # no login: not published at all
    assert not svc(compose, "postgres").get("ports")
    for entry, caught in [
        ("9090:9090", True),  # every interface
        ("9090", True),  # every interface, a random port
        ("0.0.0.0:9090:9090", True),
        ({"target": 9090, "published": 9090}, True),
        ({"target": 9090, "published": 9090, "host_ip": "0.0.0.0"}, True),
        ("10.0.0.5:9090:9090", True),
        ("127.0.0.1:9090:9090", False),
        ("[::1]:9090:9090/tcp", False),
        ({"target": 9090, "published": 9090, "host_ip": "127.0.0.1"}, False),
    ]:
        broken = copy.deepcopy(compose)
        svc(broken, "prometheus")["ports"] = [entry]
        assert bool(cc.published_beyond_loopback(broken)) is caught, entry
    broken = copy.deepcopy(compose)
    svc(broken, "grafana")["network_mode"] = "host"
    assert cc.published_beyond_loopback(broken)


def test_every_kafka_client_listener_needs_a_scram_login(compose: dict[str, Any]) -> None:
    assert cc.kafka_listener_problems(compose) == []
    listeners = cc.kafka_listeners(env(compose, "kafka"))
    assert {n for n, (_, _, p) in listeners.items() if p == "SASL_PLAINTEXT"} == {
        "INTERNAL",
        "EXTERNAL",
    }
    kenv = env(compose, "kafka")
    for key, value in [
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].replace(
                "EXTERNAL:SASL_PLAINTEXT", "EXTERNAL:PLAINTEXT"
            ),
        ),
        (
            "KAFKA_LISTENERS",
            kenv["KAFKA_LISTENERS"].replace("BROKER://127.0.0.1", "BROKER://0.0.0.0"),
        ),
        ("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-512,PLAIN"),
        ("KAFKA_LISTENER_NAME_EXTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG", ""),
    ]:
        broken = copy.deepcopy(compose)
        env(broken, "kafka")[key] = value
        assert cc.kafka_listener_problems(broken), key
    broken = copy.deepcopy(compose)
    svc(broken, "kafka")["ports"] = ["127.0.0.1:9094:9094"]  # the loopback PLAINTEXT listener
    assert cc.kafka_listener_problems(broken)
    broken = copy.deepcopy(compose)
    svc(broken, "worker")["network_mode"] = "service:kafka"
    assert cc.kafka_listener_problems(broken)


def test_kafka_acls_are_on_and_closed(compose: dict[str, Any]) -> None:
    assert cc.kafka_authorizer_problems(compose) == []
    for key, value in [
        ("KAFKA_AUTHORIZER_CLASS_NAME", None),
        ("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true"),
        ("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", None),
        ("KAFKA_SUPER_USERS", "User:admin;User:worker"),
    ]:
        broken = copy.deepcopy(compose)
        if value is None:
            del env(broken, "kafka")[key]
        else:
            env(broken, "kafka")[key] = value
        assert cc.kafka_authorizer_problems(broken), (key, value)


def test_no_literal_secrets(compose: dict[str, Any], example: dict[str, str]) -> None:
    names = set(example)
    assert cc.secret_problems(compose, names) == []
    assert cc.referenced_variables(compose) == names
    breakages = [
        ("postgres", "POSTGRES_PASSWORD", "minhu"),
        ("grafana", "GF_SECURITY_ADMIN_PASSWORD", "${GRAFANA_ADMIN_PASSWORD}"),  # empty if unset
        ("grafana", "GF_SECURITY_ADMIN_PASSWORD", "${GRAFANA_ADMIN_PASSWORD:-admin}"),
        ("worker", "MINHU_SASL_PASSWORD", "${NOT_IN_THE_EXAMPLE:?x}"),
        ("worker", "MINHU_LEDGER", "postgresql+psycopg://minhu_worker:hunter2@postgres:5432/minhu"),
        (
            "kafka",
            "KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG",
            'x password="p";',
        ),
    ]
    for service, key, value in breakages:
        broken = copy.deepcopy(compose)
        env(broken, service)[key] = value
        assert cc.secret_problems(broken, names), (service, key, value)
    broken = copy.deepcopy(compose)
    svc(broken, "worker")["command"] = ["worker", "--sasl-password", "hunter2"]
    assert cc.secret_problems(broken, names)
    assert cc.secret_problems(compose, names | {"STALE_VARIABLE"})


def test_the_env_example_holds_no_secret_and_env_is_not_committed(example: dict[str, str]) -> None:
    assert example and all(v == "" for v in example.values()), "values stay empty in the example"
    for name in example:  # each says what it is for, on the line above
        assert re.search(rf"^# .*\n{name}=", text(".env.example"), re.M), name
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("docker/.env", ".env"):
        done = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
        )
        assert done.returncode == 0, f"{path} is not ignored by git"
    tracked = subprocess.run(
        ["git", "ls-files", "docker/.env"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout == ""


def test_grafana_is_not_open(compose: dict[str, Any]) -> None:
    assert cc.grafana_problems(compose) == []
    for key, value in [
        ("GF_AUTH_ANONYMOUS_ENABLED", "true"),
        ("GF_AUTH_ANONYMOUS_ENABLED", None),
        ("GF_USERS_ALLOW_SIGN_UP", "true"),
        ("GF_SECURITY_ADMIN_PASSWORD", None),
        ("GF_SECURITY_ADMIN_PASSWORD", "admin"),
    ]:
        broken = copy.deepcopy(compose)
        if value is None:
            del env(broken, "grafana")[key]
        else:
            env(broken, "grafana")[key] = value
        assert cc.grafana_problems(broken), (key, value)


def test_containers_run_as_non_root(compose: dict[str, Any]) -> None:
    dockerfile = text("Dockerfile")
    assert cc.dockerfile_user_problems(dockerfile) == []
    assert cc.root_service_problems(compose, dockerfile) == []
    assert cc.dockerfile_user_problems(dockerfile + "USER root\n")
    assert cc.dockerfile_user_problems(dockerfile + "USER 0:0\n")
    assert cc.dockerfile_user_problems(re.sub(r"(?m)^USER .*$", "", dockerfile))
    assert cc.dockerfile_user_problems(dockerfile + "FROM python:3.11-slim\n")  # a new stage
    assert cc.root_service_problems(compose, dockerfile + "USER root\n")
    for service, user in [("postgres", None), ("grafana", "0"), ("kafka", "root:root")]:
        broken = copy.deepcopy(compose)
        if user is None:
            del svc(broken, service)["user"]
        else:
            svc(broken, service)["user"] = user
        assert cc.root_service_problems(broken, dockerfile), (service, user)


def test_worker_environment_is_worker_settings(compose: dict[str, Any]) -> None:
    """Every MINHU_* variable is a worker setting (= a CLI flag), the values validate, and the
    only other variable is libpq's PGPASSWORD."""
    assert cc.worker_env_problems(compose) == []
    w = cc.minhu_settings(env(compose, "worker"))
    t = cc.minhu_settings(env(compose, "topics"))
    assert w.broker == t.broker == "kafka:9092"
    assert (w.partitions, w.app_id) == (t.partitions, t.app_id)
    assert w.store.startswith("rocksdb")
    assert w.sasl_username == "worker" and w.sasl_password is not None
    for service, key, value in [
        ("worker", "MINHU_NOT_A_SETTING", "1"),
        ("worker", "MINHU_SECURITY_PROTOCOL", None),  # a password without SASL is refused
        ("topics", "MINHU_PARTITIONS", "zero"),
        ("worker", "MINHU_METRICS_HOST", None),
        ("worker", "KAFKA_PASSWORD", "x"),
    ]:
        broken = copy.deepcopy(compose)
        if value is None:
            del env(broken, service)[key]
        else:
            env(broken, service)[key] = value
        assert cc.worker_env_problems(broken), (service, key, value)
    init = env(compose, "kafka-init")
    assert (init["TOPIC_PREFIX"], init["APP_ID"]) == (w.topic_prefix, w.app_id)


# ---- the ACL script, run with stub Kafka tools ------------------------------------------------

STUB = """#!/usr/bin/env bash
{ printf '%s\\0' "$(basename "$0")" "$@"; printf '\\n'; } >> "$STUB_LOG"
"""


def run_kafka_init(
    tmp_path: Path, env_compose: dict[str, Any], **overrides: str
) -> tuple[int, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("kafka-acls.sh", "kafka-configs.sh"):
        stub = bin_dir / tool
        stub.write_text(STUB, encoding="utf-8")
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.log"
    log.write_text("", encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCRAM_")}
    for key, value in env_compose.items():
        # ${KAFKA_X_PASSWORD:?...} → a made-up password per user
        environ[key] = f"pw-{key.lower()}-0123456789" if value.startswith("${") else value
    environ.update(KAFKA_BIN=str(bin_dir), STUB_LOG=str(log), **overrides)
    done = subprocess.run(
        ["bash", str(DOCKER / "kafka-init.sh")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, log.read_text(encoding="utf-8"), done.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_the_acl_script_grants_each_user_its_own_and_no_more(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    init_env = env(compose, "kafka-init")
    code, log, err = run_kafka_init(tmp_path, init_env)
    assert code == 0, err
    calls = cc.parse_calls(log)
    users = cc.scram_users_from(calls)
    assert set(users) == {"admin", "worker", "gateway", "service", "ops", "auditor"}
    assert users["gateway"] == "pw-scram_gateway_password-0123456789"
    # Every SCRAM user's password comes from .env, through compose, under the names the
    # minhu containers use too.
    assert init_env["SCRAM_WORKER_PASSWORD"] == env(compose, "worker")["MINHU_SASL_PASSWORD"]
    assert init_env["SCRAM_ADMIN_PASSWORD"] == env(compose, "topics")["MINHU_SASL_PASSWORD"]
    for call in calls:
        assert "--bootstrap-server" in call and call[call.index("--bootstrap-server") + 1] == (
            "127.0.0.1:9094"
        )
    grants = cc.grants_from(calls)
    topics = Topics(init_env["TOPIC_PREFIX"])
    app = init_env["APP_ID"]
    assert cc.acl_problems(grants, set(users), topics, app) == []
    alarm, appeal = topics.intake("alarm"), topics.intake("appeal")
    assert {(g.operation, g.name) for g in grants if g.user == "gateway"} == {("Write", alarm)}

    def broken(*extra: cc.Grant, drop: cc.Grant | None = None) -> list[str]:
        return cc.acl_problems(
            [g for g in grants if g != drop] + list(extra), set(users), topics, app
        )

    G = cc.Grant
    assert broken(G("gateway", "Write", "literal", "topic", appeal))
    assert broken(G("gateway", "Read", "literal", "topic", alarm))
    assert broken(G("ops", "Read", "prefixed", "topic", topics.prefix))  # reaches dead letters
    assert broken(G("worker", "Read", "literal", "topic", topics.deadletter))
    assert broken(G("service", "Read", "literal", "topic", topics.deadletter))
    assert broken(G("service", "Write", "literal", "topic", topics.closures))
    assert broken(drop=G("service", "Write", "literal", "topic", topics.deadletter))
    assert broken(drop=G("service", "Read", "literal", "topic", topics.closures))
    assert broken(drop=G("service", "Read", "literal", "topic", topics.ratings))
    assert broken(G("ops", "Read", "literal", "group", app))  # the workers' group
    assert broken(G("stranger", "Read", "literal", "topic", topics.dispatch(Tier.GRID)))
    assert broken(G("auditor", "All", "literal", "topic", topics.deadletter))
    assert broken(drop=G("worker", "Read", "literal", "topic", topics.intake("urgent")))
    assert broken(drop=G("auditor", "Read", "literal", "topic", topics.deadletter))
    assert broken(drop=G("worker", "Read", "literal", "group", app))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_the_acl_script_refuses_missing_or_weak_passwords(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    init_env = env(compose, "kafka-init")
    for value in ("", "short", "has,comma-0123456789", "has=equals-0123456789"):
        code, _, err = run_kafka_init(tmp_path, init_env, SCRAM_OPS_PASSWORD=value)
        assert code != 0 and "SCRAM_OPS_PASSWORD" in err, value


# ---- the ledger -------------------------------------------------------------------------------


def test_only_the_worker_writes_the_ledger(compose: dict[str, Any]) -> None:
    sql = text("postgres-init.sql")
    assert cc.ledger_problems(compose, sql) == []
    grantees = {g for _, _, g in cc.sql_grants(sql)}
    assert grantees == {"minhu_worker", "minhu_analyst"}
    for bad_sql in (
        sql + "GRANT INSERT ON ALL TABLES IN SCHEMA public TO minhu_analyst;\n",
        sql + "GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC;\n",
        sql + "GRANT CREATE ON SCHEMA public TO minhu_analyst;\n",
        sql.replace("REVOKE ALL ON DATABASE", "-- REVOKE ALL ON DATABASE"),
    ):
        assert cc.ledger_problems(compose, bad_sql)
    broken = copy.deepcopy(compose)
    env(broken, "worker")["MINHU_LEDGER"] = "postgresql+psycopg://postgres@postgres:5432/minhu"
    assert cc.ledger_problems(broken, sql)
    broken = copy.deepcopy(compose)
    svc(broken, "grafana")["networks"].append("ledger")
    assert cc.ledger_problems(broken, sql)
    broken = copy.deepcopy(compose)
    svc(broken, "postgres")["ports"] = ["127.0.0.1:5432:5432"]
    assert cc.ledger_problems(broken, sql)


def _psql_target() -> str | None:
    """A libpq URL of the test server when psql ≥ 15 and a superuser login are available."""
    if shutil.which("psql") is None:
        return None
    version = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)\.", version)
    if not m or int(m.group(1)) < 15:  # \getenv
        return None
    url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    probe = subprocess.run(
        ["psql", url, "-XAtc", "select rolsuper from pg_roles where rolname = current_user"],
        capture_output=True,
        text=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "3"},
    )
    return url if probe.returncode == 0 and probe.stdout.strip() == "t" else None


def test_the_ledger_roles_on_a_real_server() -> None:
    """postgres-init.sql on a scratch database, in a transaction that is rolled back (roles are
    cluster-wide): the worker creates and writes a table, the analyst reads it and may not
    write it, a stranger may not connect."""
    url = _psql_target()
    if url is None:
        pytest.skip(f"needs psql >= 15 and a superuser login at {PG_URL} (MINHU_TEST_PG_URL)")
    scratch = f"minhu_roles_{os.getpid()}"
    admin = ["psql", url, "-X", "-v", "ON_ERROR_STOP=1", "-q"]
    roles = "select count(*) from pg_roles where rolname in ('minhu_worker', 'minhu_analyst')"
    existing = subprocess.run([*admin, "-Atc", roles], capture_output=True, text=True, check=True)
    if existing.stdout.strip() != "0":
        pytest.skip("roles minhu_worker/minhu_analyst already exist on the test server")
    subprocess.run([*admin, "-c", f"CREATE DATABASE {scratch}"], check=True, capture_output=True)
    try:
        script = "\n".join(
            [
                "BEGIN;",
                f"\\i {DOCKER / 'postgres-init.sql'}",
                "SET ROLE minhu_worker;",
                "CREATE TABLE probe (x int);",
                "INSERT INTO probe VALUES (1);",
                "RESET ROLE;",
                "SET ROLE minhu_analyst;",
                "SELECT 'analyst reads ' || count(*) FROM probe;",
                "SELECT 'analyst may connect: ' || has_database_privilege(current_database(), 'CONNECT');",
                "SELECT 'public may connect: ' || has_database_privilege('public', current_database(), 'CONNECT');",
                "SELECT 'analyst may insert: ' || has_table_privilege('probe', 'INSERT');",
                "RESET ROLE;",
                "\\set ON_ERROR_STOP 0",
                "SET ROLE minhu_analyst;",
                "INSERT INTO probe VALUES (2);",
                "ROLLBACK;",
            ]
        )
        target = urlparse(url)._replace(path=f"/{scratch}").geturl()
        done = subprocess.run(
            ["psql", target, "-X", "-v", "ON_ERROR_STOP=1", "-At"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "LEDGER_WORKER_PASSWORD": "w-0123456789abcdef",
                "LEDGER_ANALYST_PASSWORD": "a-0123456789abcdef",
            },
        )
        out = done.stdout.splitlines()
        assert "analyst reads 1" in out, done.stdout + done.stderr
        assert "analyst may connect: true" in out
        assert "public may connect: false" in out
        assert "analyst may insert: false" in out
        assert "permission denied for table probe" in done.stderr
        leftover = subprocess.run(
            [*admin, "-Atc", roles], capture_output=True, text=True, check=True
        )
        assert leftover.stdout.strip() == "0"  # rolled back
    finally:
        subprocess.run([*admin, "-c", f"DROP DATABASE IF EXISTS {scratch}"], capture_output=True)


def test_the_service_publishes_to_kafka_as_its_own_login(compose: dict[str, Any]) -> None:
    assert cc.service_problems(compose) == []
    assert svc(compose, "service")["ports"] == ["127.0.0.1:8311:8311"]
    broken = copy.deepcopy(compose)
    env(broken, "service")["MINHU_SASL_USERNAME"] = "worker"
    assert cc.service_problems(broken)
    broken = copy.deepcopy(compose)
    svc(broken, "service")["command"] = ["serve", "--host", "0.0.0.0"]
    env(broken, "service")["MINHU_BROKER"] = "kafka:9092"
    assert cc.service_problems(broken)
    broken = copy.deepcopy(compose)
    svc(broken, "service")["networks"] = ["kafka", "ledger"]
    assert cc.service_problems(broken)
    broken = copy.deepcopy(compose)
    svc(broken, "service")["ports"] = ["8311:8311"]
    assert cc.published_beyond_loopback(broken)


def test_mosquitto_is_closed_and_the_bridge_reaches_it(compose: dict[str, Any]) -> None:
    conf, acl = text("mosquitto/mosquitto.conf"), text("mosquitto/acl")
    assert cc.mosquitto_problems(compose, conf, acl) == []
    assert svc(compose, "mqtt-bridge")["command"] == ["mqtt-bridge"]
    assert cc.mosquitto_problems(compose, conf.replace("allow_anonymous false", ""), acl)
    assert cc.mosquitto_problems(
        compose, conf.replace("allow_anonymous false", "allow_anonymous true"), acl
    )
    assert cc.mosquitto_problems(compose, conf, acl.replace("user minhu-bridge", "user other"))
    for service, key, value in [
        ("mqtt-bridge", "MINHU_MQTT_ADDRESS", "127.0.0.1:1883"),
        ("mqtt-bridge", "MINHU_MQTT_ADDRESS", "mosquitto:8883"),
        ("mqtt-bridge", "networks", ["kafka"]),
        ("mosquitto", "volumes", ["./mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf"]),
    ]:
        broken = copy.deepcopy(compose)
        if key == "MINHU_MQTT_ADDRESS":
            env(broken, service)[key] = value
        else:
            svc(broken, service)[key] = value
        assert cc.mosquitto_problems(broken, conf, acl), (service, key, value)
    dockerfile = text("Dockerfile")
    broken = copy.deepcopy(compose)
    svc(broken, "mosquitto")["user"] = "root"
    assert cc.root_service_problems(broken, dockerfile)
    broken = copy.deepcopy(compose)
    svc(broken, "mosquitto")["ports"] = ["1883:1883"]
    assert cc.published_beyond_loopback(broken)
