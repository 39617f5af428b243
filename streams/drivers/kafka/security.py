"""How minhu's Kafka clients log in: the same settings, in the two clients' words.

The worker is a Faust app (aiokafka underneath); the publisher, `minhu consume`, `topics
create`, the worker's start-up check and `replay --from kafka` use kafka-python. Both get their
login from `WorkerSettings` (`security_protocol`, `sasl_mechanism`, `sasl_username`,
`sasl_password`, `ssl_cafile`), which has already refused combinations that make no sense (a
password without SASL, SASL without a password, PLAIN in clear).

    faust.App(app_id, broker=..., **faust_credentials(settings))
    KafkaProducer(bootstrap_servers=..., **kafka_python_config(settings))

PLAINTEXT gives nothing, so a client without settings connects as it always did.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams.drivers.kafka.settings import WorkerSettings


def _password(settings: WorkerSettings) -> str:
    assert settings.sasl_password is not None  # WorkerSettings refuses SASL without one
    return settings.sasl_password.get_secret_value()


def ssl_context(settings: WorkerSettings) -> ssl.SSLContext | None:
    """A verifying TLS context for SASL_SSL (the broker's certificate and host name are
    checked), None otherwise."""
    if settings.security_protocol != "SASL_SSL":
        return None
    return ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=settings.ssl_cafile)


def faust_credentials(settings: WorkerSettings) -> dict[str, Any]:
    """Keyword arguments for `faust.App`: `broker_credentials` for SASL (with the TLS context
    under SASL_SSL), nothing for PLAINTEXT."""
    if settings.security_protocol == "PLAINTEXT":
        return {}
    return {
        "broker_credentials": faust.SASLCredentials(
            username=settings.sasl_username,
            password=_password(settings),
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context(settings),
        )
    }


def _sasl(settings: WorkerSettings) -> dict[str, Any]:
    """The login, in the words kafka-python and aiokafka share."""
    return {
        "security_protocol": settings.security_protocol,
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.sasl_username,
        "sasl_plain_password": _password(settings),
    }


def aiokafka_credentials(settings: WorkerSettings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client of the worker's own (the life-safety lane's
    consumer); empty for PLAINTEXT."""
    if settings.security_protocol == "PLAINTEXT":
        return {}
    return {**_sasl(settings), "ssl_context": ssl_context(settings)}


def kafka_python_config(settings: WorkerSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient;
    empty for PLAINTEXT."""
    if settings.security_protocol == "PLAINTEXT":
        return {}
    config = _sasl(settings)
    if settings.security_protocol == "SASL_SSL":
        config["ssl_check_hostname"] = True
        if settings.ssl_cafile is not None:
            config["ssl_cafile"] = settings.ssl_cafile
    return config


__all__ = ["aiokafka_credentials", "faust_credentials", "kafka_python_config", "ssl_context"]
