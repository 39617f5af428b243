"""What "closed by default" means for docker/, as small checks over parsed files.

Each check takes a parsed document (or a file's text) and returns the problems it finds, one
line each; no problem is an empty list. tests/unit/streams/test_docker.py runs them on the real
files, then on broken copies, so that each check is seen to fail when it should.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from streams.drivers.kafka.admin import changelog_topic, forwarded_topic, plan
from streams.drivers.kafka.settings import ENV_PREFIX, WorkerSettings, settings_from
from streams.topics import INTAKE_KINDS, Topics

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
ROOT_USERS = {"root", "0"}
SECRET_KEY = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|_KEY$", re.IGNORECASE)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
STRICT_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}$")
URL_PASSWORD = re.compile(r"://[^/@:\s]+:[^/@\s]+@")
MINHU_IMAGE = "minhu:latest"
# Environment of a worker that is not a minhu setting: libpq's password for the ledger URL.
NOT_SETTINGS = {"PGPASSWORD"}
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SUPER_USERS = {"User:admin", "User:ANONYMOUS"}


def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = doc.get("services") or {}
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either compose form (mapping or KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string (and number) in a parsed document, with where it is."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}[{i}]")
    elif node is not None:
        yield path, str(node)


# ---- ports ------------------------------------------------------------------------------------


def published_host_ip(entry: Any) -> str | None:
    """The host address a `ports:` entry publishes on; None means every interface."""
    if isinstance(entry, dict):
        ip = entry.get("host_ip")
        return None if ip in (None, "", "0.0.0.0", "::") else str(ip)
    text = str(entry).split("/")[0]
    if text.startswith("["):  # [::1]:3000:3000
        return text[1:].partition("]")[0]
    parts = text.split(":")
    if len(parts) < 3:  # "3000" or "3000:3000": every interface
        return None
    ip = ":".join(parts[:-2])
    return None if ip in ("", "0.0.0.0", "::") else ip


def published_beyond_loopback(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        if svc.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host publishes every port it opens")
        for entry in svc.get("ports") or []:
            ip = published_host_ip(entry)
            if ip not in LOOPBACK:
                where = "every interface (0.0.0.0)" if ip is None else ip
                problems.append(f"{name}: port {entry!r} is published on {where}")
    return problems


# ---- Kafka ------------------------------------------------------------------------------------


def kafka_listeners(env: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    """name -> (host, port, security protocol) of each listener the broker binds."""
    protocols = dict(
        item.split(":", 1)
        for item in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(",")
    )
    out = {}
    for item in env.get("KAFKA_LISTENERS", "").split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host.strip("[]"), port, protocols.get(name, name))
    return out


def kafka_listener_problems(doc: dict[str, Any]) -> list[str]:
    """Every listener a client can reach needs a SCRAM login; PLAINTEXT only on the loopback,
    and only the broker's own one-shot init may share the broker's network namespace."""
    svcs = services(doc)
    env = env_of(svcs["kafka"])
    problems = []
    listeners = kafka_listeners(env)
    if not listeners:
        problems.append("kafka: no KAFKA_LISTENERS")
    sasl_ports = set()
    for name, (host, port, protocol) in listeners.items():
        if protocol.startswith("SASL_"):
            sasl_ports.add(port)
            jaas = f"KAFKA_LISTENER_NAME_{name}_SCRAM___SHA___512_SASL_JAAS_CONFIG"
            if "ScramLoginModule" not in env.get(jaas, ""):
                problems.append(f"kafka: listener {name} has no SCRAM login module ({jaas})")
        elif host not in LOOPBACK:
            problems.append(f"kafka: listener {name} is {protocol} on {host or 'every address'}")
    mechanisms = set(env.get("KAFKA_SASL_ENABLED_MECHANISMS", "GSSAPI").split(","))
    if mechanisms != {"SCRAM-SHA-512"}:
        problems.append(f"kafka: SASL mechanisms {sorted(mechanisms)}, not SCRAM-SHA-512 alone")
    for entry in svcs["kafka"].get("ports") or []:
        target = str(entry.get("target") if isinstance(entry, dict) else entry).split("/")[0]
        if target.split(":")[-1] not in sasl_ports:
            problems.append(f"kafka: published port {entry!r} is not a SASL listener")
    sharing = {
        n
        for n, s in svcs.items()
        if str(s.get("network_mode", "")) in ("service:kafka", "container:kafka")
    }
    if sharing - {"kafka-init"}:
        problems.append(
            f"{', '.join(sorted(sharing - {'kafka-init'}))}: shares the broker's network "
            "namespace, where the loopback listeners make it a super user"
        )
    return problems


def kafka_authorizer_problems(doc: dict[str, Any]) -> list[str]:
    env = env_of(services(doc)["kafka"])
    problems = []
    if env.get("KAFKA_AUTHORIZER_CLASS_NAME") != AUTHORIZER:
        problems.append(f"kafka: authorizer is not {AUTHORIZER}")
    if env.get("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "").lower() != "false":
        problems.append("kafka: allow.everyone.if.no.acl.found is not false")
    supers = {u.strip() for u in env.get("KAFKA_SUPER_USERS", "").split(";") if u.strip()}
    if supers - SUPER_USERS:
        problems.append(f"kafka: unexpected super users {sorted(supers - SUPER_USERS)}")
    if "User:admin" not in supers:
        problems.append("kafka: no admin super user")
    return problems


# ---- secrets ----------------------------------------------------------------------------------


def referenced_variables(doc: dict[str, Any]) -> set[str]:
    return {m.group(1) for _, text in strings(doc) for m in REFERENCE.finditer(text)}


def secret_problems(doc: dict[str, Any], example_variables: set[str]) -> list[str]:
    """No literal secret anywhere: a secret is `${VAR:?message}`, VAR is in .env.example."""
    problems = []
    for path, text in strings(doc):
        for m in REFERENCE.finditer(text):
            if not m.group(2).startswith(":?"):
                problems.append(
                    f"{path}: {m.group(0)} does not fail when unset (use ${{VAR:?...}})"
                )
            if m.group(1) not in example_variables:
                problems.append(f"{path}: {m.group(1)} is not in docker/.env.example")
        if URL_PASSWORD.search(text):
            problems.append(f"{path}: a URL with a password in it")
        if re.search(r"password\s*=\s*\S", text, re.IGNORECASE) or "--sasl-password" in text:
            problems.append(f"{path}: a password in a value or a command line")
    for name, svc in services(doc).items():
        for key, value in env_of(svc).items():
            if SECRET_KEY.search(key) and not STRICT_REFERENCE.match(value):
                problems.append(f"{name}: {key} is not a ${{VAR:?...}} reference")
    for var in sorted(example_variables - referenced_variables(doc)):
        problems.append(f"docker/.env.example: {var} is not used by compose")
    return problems


def example_variables(text: str) -> dict[str, str]:
    """NAME=value lines of an .env file."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


# ---- Grafana ----------------------------------------------------------------------------------


def grafana_problems(doc: dict[str, Any]) -> list[str]:
    env = env_of(services(doc)["grafana"])
    problems = []
    for key in ("GF_AUTH_ANONYMOUS_ENABLED", "GF_USERS_ALLOW_SIGN_UP"):
        if env.get(key, "").lower() != "false":  # unset: Grafana's default, which may change
            problems.append(f"grafana: {key} is not explicitly false")
    if not STRICT_REFERENCE.match(env.get("GF_SECURITY_ADMIN_PASSWORD", "")):
        problems.append("grafana: the admin password is not from docker/.env (default admin/admin)")
    return problems


# ---- users ------------------------------------------------------------------------------------


def dockerfile_user_problems(text: str) -> list[str]:
    """The image's last stage ends as a non-root USER."""
    last_stage = re.split(r"(?im)^\s*FROM\s", text)[-1]
    users = re.findall(r"(?im)^\s*USER\s+(\S+)", last_stage)
    if not users:
        return ["docker/Dockerfile: no USER: the image runs as root"]
    user = users[-1].split(":")[0]
    return [f"docker/Dockerfile: USER {users[-1]} is root"] if user in ROOT_USERS else []


def root_service_problems(doc: dict[str, Any], dockerfile: str) -> list[str]:
    """Every container runs as a non-root user: its `user:`, or the minhu image's USER."""
    problems = []
    for name, svc in services(doc).items():
        user = svc.get("user")
        if user is None and (svc.get("image") == MINHU_IMAGE or "build" in svc):
            problems += [f"{name}: {p}" for p in dockerfile_user_problems(dockerfile)]
        elif user is None:
            problems.append(f"{name}: no `user:`, so it runs as its image's default user")
        elif str(user).split(":")[0] in ROOT_USERS:
            problems.append(f"{name}: runs as root ({user})")
    return problems


# ---- the worker -------------------------------------------------------------------------------


def minhu_settings(env: dict[str, str]) -> WorkerSettings:
    return settings_from(
        {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    )


def worker_env_problems(doc: dict[str, Any]) -> list[str]:
    """The minhu containers' MINHU_* variables are WorkerSettings fields (= CLI flags) whose
    values validate, and they log in to Kafka."""
    fields = {ENV_PREFIX + f.upper() for f in WorkerSettings.model_fields}
    problems = []
    for name in ("worker", "topics"):
        env = env_of(services(doc)[name])
        unknown = {k for k in env if k not in fields and k not in NOT_SETTINGS}
        if unknown:
            problems.append(f"{name}: {sorted(unknown)} are not worker settings")
        try:
            s = minhu_settings(env)
        except ValueError as err:
            problems.append(f"{name}: settings do not validate: {err}")
            continue
        if not s.security_protocol.startswith("SASL_"):
            problems.append(f"{name}: connects to Kafka without a login ({s.security_protocol})")
    if "MINHU_METRICS_HOST" not in env_of(services(doc)["worker"]):
        problems.append("worker: MINHU_METRICS_HOST is not set explicitly")
    return problems


# ---- Kafka ACLs (docker/kafka-init.sh, run with stub tools) -----------------------------------


@dataclass(frozen=True)
class Grant:
    user: str
    operation: str
    pattern: str  # literal | prefixed
    resource: str  # topic | group | transactional-id
    name: str

    def covers(self, resource: str, name: str) -> bool:
        if resource != self.resource:
            return False
        if self.pattern == "prefixed":
            return name.startswith(self.name)
        return self.name in (name, "*")


def parse_calls(log: str) -> list[list[str]]:
    """The stubs' log: one call a line, its arguments separated by NUL."""
    return [line.split("\0")[:-1] for line in log.splitlines() if line]


def grants_from(calls: Iterable[list[str]]) -> list[Grant]:
    out = []
    for call in calls:
        if call[0] != "kafka-acls.sh":
            continue
        users, ops, names = [], [], []
        pattern = "literal"
        it = iter(call[1:])
        for arg in it:
            if arg == "--allow-principal":
                users.append(next(it).removeprefix("User:"))
            elif arg == "--operation":
                ops.append(next(it))
            elif arg == "--resource-pattern-type":
                pattern = next(it)
            elif arg in ("--topic", "--group", "--transactional-id"):
                names.append((arg[2:], next(it)))
            elif arg in ("--deny-principal", "--cluster"):
                raise AssertionError(f"not understood here: {shlex.join(call)}")
        out += [Grant(u, o, pattern, r, n) for u in users for o in ops for r, n in names]
    return out


def scram_users_from(calls: Iterable[list[str]]) -> dict[str, str]:
    """user -> the SCRAM-SHA-512 password kafka-configs.sh was given."""
    out = {}
    for call in calls:
        if call[0] != "kafka-configs.sh":
            continue
        name = call[call.index("--entity-name") + 1]
        config = call[call.index("--add-config") + 1]
        m = re.fullmatch(r"SCRAM-SHA-512=\[iterations=\d+,password=(.+)\]", config)
        assert m, config
        out[name] = m.group(1)
    return out


def may(grants: Iterable[Grant], user: str, operation: str, topic: str) -> bool:
    implied = {"Read": {"Read", "All"}, "Write": {"Write", "All"}}[operation]
    return any(
        g.user == user and g.operation in implied and g.covers("topic", topic) for g in grants
    )


def acl_problems(grants: list[Grant], users: set[str], topics: Topics, app_id: str) -> list[str]:
    intake = {topics.intake(k) for k in INTAKE_KINDS}
    dispatch = {n for n in topics.all() if ".dispatch." in n}
    outputs = set(topics.all()) - intake
    own = {
        forwarded_topic(topics, app_id),
        changelog_topic(app_id),
        f"{app_id}-__assignor-__leader",
    }
    known = {p.name for p in plan(topics, app_id, 1, 0, 0)} | own
    everything = known | {topics.prefix + "anything-else"}
    problems = []

    def who(operation: str, topic: str) -> set[str]:
        return {u for u in users | {g.user for g in grants} if may(grants, u, operation, topic)}

    for g in grants:
        if g.user not in users:
            problems.append(f"ACL for {g.user}, who has no SCRAM user")
        if g.user in ("*", "ANONYMOUS") or g.operation == "All" or g.name == "*":
            problems.append(f"ACL too wide: {g}")
        if g.resource == "topic" and g.pattern != "literal":
            problems.append(f"prefixed topic ACL (covers topics yet to come): {g}")
        if g.resource == "topic" and g.name not in known:
            problems.append(f"ACL on a topic minhu does not have: {g.name}")
    for user in users - {"admin"} - {g.user for g in grants}:
        problems.append(f"SCRAM user {user} has no ACL")

    def expect(user: str, operation: str, wanted: set[str]) -> None:
        has = {t for t in everything if may(grants, user, operation, t)}
        if has != wanted:
            extra, missing = sorted(has - wanted), sorted(wanted - has)
            problems.append(f"{user} {operation}: extra {extra}, missing {missing}")

    expect("gateway", "Write", {topics.intake("alarm")})
    expect("gateway", "Read", set())
    # The service publishes to the intake topics, dead-letters what its doors refuse, and
    # reads back what the workers publish for its board and Open311.
    expect("service", "Write", intake | {topics.deadletter})
    expect("service", "Read", dispatch | {topics.closures, topics.ratings})
    expect("ops", "Write", set())
    expect("ops", "Read", dispatch)
    expect("worker", "Read", intake | own)
    expect("worker", "Write", outputs | own)
    expect("auditor", "Write", set())
    if who("Read", topics.deadletter) != {"auditor"}:
        problems.append(
            f"{topics.deadletter} is readable by {sorted(who('Read', topics.deadletter))}"
        )
    groups = [g for g in grants if g.resource == "group" and g.operation == "Read"]
    if not any(g.user == "worker" and g.pattern == "literal" and g.name == app_id for g in groups):
        problems.append(f"worker may not join its consumer group {app_id}")
    for g in groups:
        if g.user != "worker" and (
            g.name == app_id or (g.pattern == "prefixed" and app_id.startswith(g.name))
        ):
            problems.append(f"{g.user} may join the workers' group {app_id}: {g}")
    return problems


# ---- the ledger -------------------------------------------------------------------------------

WRITE_PRIVILEGES = {"INSERT", "UPDATE", "DELETE", "TRUNCATE", "ALL", "REFERENCES", "TRIGGER"}


def sql_code(sql: str) -> str:
    """A SQL file without its comments."""
    return re.sub(r"--[^\n]*", "", sql)


def sql_grants(sql: str) -> list[tuple[set[str], str, str]]:
    """(privileges, object, grantee) of every GRANT in a SQL file (comments dropped)."""
    text = sql_code(sql)
    out = []
    for m in re.finditer(r"\bGRANT\s+(.+?)\s+ON\s+(.+?)\s+TO\s+([\w\"]+)", text, re.I | re.S):
        privileges = {p.strip().upper() for p in m.group(1).split(",")}
        out.append((privileges, " ".join(m.group(2).split()), m.group(3).strip('"')))
    return out


def ledger_problems(doc: dict[str, Any], sql: str) -> list[str]:
    """Only the worker's role writes the ledger; analysts only read; only workers reach it."""
    svcs = services(doc)
    sql = sql_code(sql)
    pg_env = env_of(svcs["postgres"])
    ledger = urlparse(env_of(svcs["worker"]).get("MINHU_LEDGER", ""))
    problems = []
    if ledger.password:
        problems.append("worker: the ledger URL carries a password")
    if ledger.username in (None, pg_env.get("POSTGRES_USER", "postgres")):
        problems.append("worker: writes the ledger as the PostgreSQL superuser")
    elif not re.search(rf"CREATE ROLE {ledger.username}\b", sql):
        problems.append(f"postgres-init.sql does not create the worker's role {ledger.username}")
    grants = sql_grants(sql)
    for privileges, obj, grantee in grants:
        if grantee.upper() == "PUBLIC":
            problems.append(f"GRANT to PUBLIC on {obj}")
        if privileges & WRITE_PRIVILEGES:
            problems.append(
                f"{grantee} may write ({sorted(privileges & WRITE_PRIVILEGES)} on {obj})"
            )
        if grantee != ledger.username and privileges - {"SELECT", "USAGE", "CONNECT"}:
            problems.append(f"{grantee} gets more than reading: {sorted(privileges)} on {obj}")
    if not re.search(r"REVOKE ALL ON DATABASE .+ FROM PUBLIC", sql):
        problems.append("postgres-init.sql leaves CONNECT to PUBLIC")
    networks = {n: set(s.get("networks") or ["default"]) for n, s in svcs.items()}
    reach = {n for n, nets in networks.items() if n != "postgres" and nets & networks["postgres"]}
    if reach != {"worker"}:
        problems.append(
            f"the ledger's network is shared with {sorted(reach)}, not the workers alone"
        )
    if svcs["postgres"].get("ports"):
        problems.append("postgres: published")
    return problems


# ---- the service, Mosquitto and the MQTT bridge -------------------------------------------------


def mosquitto_problems(doc: dict[str, Any], conf: str, acl: str) -> list[str]:
    """Mosquitto is closed: no anonymous client, its logins and ACL mounted from docker/mosquitto/
    where the config looks for them, and the bridge's login may read the alarms there."""
    problems = []
    mosquitto = services(doc).get("mosquitto")
    if mosquitto is None:
        return ["no mosquitto service"]
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line.strip() and line[0] != "#"
    )
    if settings.get("allow_anonymous", "").strip() != "false":
        problems.append("mosquitto.conf: allow_anonymous is not false")
    mounts = dict(
        (target, source)
        for source, target, *_ in (str(v).split(":") for v in mosquitto.get("volumes", []))
    )
    for key in ("password_file", "acl_file"):
        path = settings.get(key, "").strip()
        if not path:
            problems.append(f"mosquitto.conf: no {key}")
        elif not mounts.get(path, "").startswith("./mosquitto/"):
            problems.append(f"mosquitto: {key} {path} is not mounted from docker/mosquitto/")
    bridge = services(doc).get("mqtt-bridge", {})
    benv = env_of(bridge)
    host, _, port = benv.get("MINHU_MQTT_ADDRESS", "").rpartition(":")
    if host != "mosquitto":
        problems.append("mqtt-bridge: MINHU_MQTT_ADDRESS is not the mosquitto service")
    listener = settings.get("listener", "").split()
    if listener and port != listener[0]:
        problems.append(f"mqtt-bridge: port {port} is not mosquitto's listener {listener[0]}")
    if not set(bridge.get("networks", [])) & set(mosquitto.get("networks", [])):
        problems.append("mqtt-bridge: shares no network with mosquitto")
    user = benv.get("MINHU_MQTT_USERNAME", "")
    if not re.search(rf"(?m)^user {re.escape(user)}\n(topic read [^\n]+\n)+", acl + "\n"):
        problems.append(f"acl: the bridge's login {user or '(none)'} may read no topic")
    return problems


def service_problems(doc: dict[str, Any]) -> list[str]:
    """`minhu serve` publishes to Kafka as the `service` login and never joins the ledger's
    network (only the workers write the ledger)."""
    service = services(doc).get("service")
    if service is None:
        return ["no service"]
    problems = []
    command = service.get("command") or []
    if command[:1] != ["serve"]:
        problems.append(f"service: runs {command!r}, not `minhu serve`")
    senv = env_of(service)
    if "--broker" not in command:  # MINHU_BROKER alone leaves `minhu serve` embedded
        problems.append("service: no --broker (it would run embedded, apart from the workers)")
    if senv.get("MINHU_SASL_USERNAME") != "service":
        problems.append("service: does not log in to Kafka as `service`")
    if "ledger" in service.get("networks", []):
        problems.append("service: joins the ledger's network")
    return problems
