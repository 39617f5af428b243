"""The Kafka login: what security.py hands each client, and that the password never shows."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from pydantic import ValidationError

from handlers.registry import Registry
from handlers.rules import Rules
from streams.cli import build_parser, main
from streams.cli.common import worker_settings
from streams.drivers.kafka.security import faust_credentials, kafka_python_config
from streams.drivers.kafka.settings import WorkerSettings, settings_from

PASSWORD = "s3cret-Do-not-print-7f3a"


def sasl(**extra: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_username": "worker",
        "sasl_password": PASSWORD,
    }
    return WorkerSettings.model_validate(values | extra)


def test_plaintext_adds_nothing() -> None:
    s = WorkerSettings()
    assert s.security_protocol == "PLAINTEXT" and s.sasl_mechanism == "SCRAM-SHA-512"
    assert faust_credentials(s) == {} and kafka_python_config(s) == {}


def test_sasl_plaintext_for_kafka_python() -> None:
    assert kafka_python_config(sasl()) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker",
        "sasl_plain_password": PASSWORD,
    }


def test_sasl_plaintext_for_faust() -> None:
    creds = faust_credentials(sasl(sasl_mechanism="SCRAM-SHA-256"))["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.ssl_context) == ("worker", PASSWORD, None)
    assert creds.protocol.value == "SASL_PLAINTEXT"
    assert creds.mechanism.value == "SCRAM-SHA-256"
    assert PASSWORD not in repr(creds)


def test_sasl_ssl_verifies_the_broker(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    s = sasl(security_protocol="SASL_SSL")
    config = kafka_python_config(s)
    assert config["security_protocol"] == "SASL_SSL" and config["ssl_check_hostname"] is True
    assert "ssl_cafile" not in config  # the system's authorities
    creds = faust_credentials(s)["broker_credentials"]
    assert creds.protocol.value == "SASL_SSL"
    ctx = creds.ssl_context
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with_ca = kafka_python_config(sasl(security_protocol="SASL_SSL", ssl_cafile=str(ca)))
    assert with_ca["ssl_cafile"] == str(ca)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "w"}, "MINHU_SASL_PASSWORD"),
        ({"security_protocol": "SASL_SSL", "sasl_password": PASSWORD}, "MINHU_SASL_USERNAME"),
        ({"sasl_username": "w", "sasl_password": PASSWORD}, "security_protocol is PLAINTEXT"),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "w",
                "sasl_password": PASSWORD,
            },
            "in clear",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_username": "w",
                "sasl_password": PASSWORD,
                "ssl_cafile": "ca.pem",
            },
            "ssl_cafile",
        ),
    ],
)
def test_settings_that_make_no_sense_are_refused(values: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as err:
        WorkerSettings.model_validate(values)
    assert says in str(err.value)
    assert PASSWORD not in str(err.value)  # errors never echo the input


def test_the_password_is_never_printed() -> None:
    s = sasl()
    for text in (repr(s), str(s), f"{s}", repr(s.sasl_password), s.model_dump_json()):
        assert PASSWORD not in text
    assert s.sasl_password is not None and s.sasl_password.get_secret_value() == PASSWORD


def test_the_password_comes_from_the_environment_not_a_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("worker", "publish", "consume", "topics create", "replay"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command.split(), "--help"])
        out = capsys.readouterr().out
        assert "--sasl-password" not in out, command
        assert "--sasl-username" in out and "MINHU_SASL_PASSWORD" in out, command
    monkeypatch.setenv("MINHU_SASL_PASSWORD", PASSWORD)
    args = build_parser().parse_args(
        ["consume", "--tier", "grid", "--security-protocol", "SASL_SSL", "--sasl-username", "ops"]
    )
    s = worker_settings(args)
    assert kafka_python_config(s)["sasl_plain_password"] == PASSWORD
    assert settings_from(
        {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "x"}
    ).sasl_password


def test_a_bad_login_setting_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MINHU_SASL_PASSWORD", PASSWORD)
    code = main(["consume", "--tier", "grid", "--broker", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and "MINHU_SECURITY_PROTOCOL" in err and PASSWORD not in err


# ---- every client gets the login ---------------------------------------------------------------


def test_the_config_is_what_kafka_python_accepts() -> None:
    """kafka-python refuses settings it does not know; these are known to all three clients."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient

    config = kafka_python_config(sasl(security_protocol="SASL_SSL", ssl_cafile="ca.pem"))
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(config) <= set(client.DEFAULT_CONFIG), client


def test_the_worker_app_logs_in(tmp_path: Path, rules: Rules, registry: Registry) -> None:
    """The Faust app of a worker carries the credentials, through Faust to aiokafka, and keeps
    its `minhu://` transport."""
    import aiokafka
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.drivers.kafka.worker import MinhuWorker

    s = sasl(metrics_port=None, data_dir=str(tmp_path))
    app = MinhuWorker(s, rules, registry, 4).app
    assert [str(u) for u in app.conf.broker] == ["minhu://127.0.0.1:9092"]
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert (auth["sasl_mechanism"], auth["sasl_plain_username"]) == ("SCRAM-SHA-512", "worker")
    assert auth["sasl_plain_password"] == PASSWORD

    async def build() -> Any:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **auth)
        client = producer.client
        await producer.stop()
        return client

    client = asyncio.run(build())
    assert (client._security_protocol, client._sasl_mechanism) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
    )


class Captured(Exception):
    """Raised by a stand-in Kafka client once it has its settings."""


def capture(calls: list[dict[str, Any]]) -> Any:
    def client(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise Captured

    return client


@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["consume", "--tier", "grid"], "streams.drivers.kafka.consumer.KafkaConsumer"),
        (["topics", "create"], "streams.drivers.kafka.admin.KafkaAdminClient"),
        (["publish", "--input", "-"], "streams.drivers.kafka.publisher.KafkaProducer"),
        (["replay", "--from", "kafka"], "kafka.KafkaConsumer"),
    ],
)
def test_every_command_passes_the_login_to_its_client(
    argv: list[str], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(target, capture(calls))
    monkeypatch.setenv("MINHU_SASL_PASSWORD", PASSWORD)
    login = ["--security-protocol", "SASL_PLAINTEXT", "--sasl-username", "ops"]
    with pytest.raises(Captured):
        main([*argv, *login])
    [kwargs] = calls
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == ("SCRAM-SHA-512", "ops")
    assert kwargs["sasl_plain_password"] == PASSWORD


def test_the_worker_start_up_check_logs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.drivers.kafka import admin

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("streams.drivers.kafka.admin.KafkaConsumer", capture(calls))
    with pytest.raises(Captured):
        admin.partitions_to_use(sasl())
    assert calls[0]["sasl_plain_username"] == "worker"
    assert calls[0]["sasl_plain_password"] == PASSWORD
