"""`minhu mqtt-bridge`: sensor gateways' alarms from an MQTT broker onto Kafka.

It validates each message (streams/service/mqtt.py), publishes the good alarms to the intake
topic and dead-letters the rest, with the reason, on the dead-letter topic. On the embedded
driver the bridge runs inside the service instead: `minhu serve --mqtt HOST:PORT`, which calls
`streams.service.mqtt.run_bridge` with its own intake.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from pydantic import ValidationError

from handlers.errors import ConfigError
from streams.cli.common import config_args, is_secret, kafka_args, load, worker_settings

# Flags of the bridge's MQTT settings, `--mqtt-<field>`; the address is `--mqtt HOST:PORT`.
MQTT_FLAGS = ("client_id", "topic_root", "username", "tls_cafile", "keepalive")


def mqtt_settings(args: argparse.Namespace) -> Any:
    from streams.service.mqtt import MqttSettings

    overrides = {name: getattr(args, f"mqtt_{name}", None) for name in MQTT_FLAGS}
    overrides["address"] = args.mqtt
    overrides["tls"] = True if args.mqtt_tls else None
    try:
        return MqttSettings.from_env(overrides)
    except ValidationError as err:  # inputs are never echoed (hide_input_in_errors)
        raise ConfigError(
            "MQTT settings (flags and MINHU_MQTT_* environment)",
            [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in err.errors()],
        ) from None


def serve_metrics(args: argparse.Namespace, kafka: Any) -> None:
    """/metrics on `--metrics-host` (the Kafka settings' `metrics_host`, also
    MINHU_METRICS_HOST: 127.0.0.1 unless told) and `--metrics-port`, if it is given."""
    from prometheus_client import start_http_server

    if args.metrics_port is not None:
        start_http_server(args.metrics_port, addr=kafka.metrics_host)


def cmd_mqtt_bridge(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.publisher import Publisher
    from streams.drivers.kafka.security import kafka_python_config
    from streams.service.kafka import KafkaIntake
    from streams.service.mqtt import run_bridge
    from streams.topics import Topics

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    kafka, mqtt = worker_settings(args), mqtt_settings(args)
    rules, registry = load(args)
    serve_metrics(args, kafka)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Publisher(
        kafka.broker, rules, registry, Topics(kafka.topic_prefix), **kafka_python_config(kafka)
    ) as publisher:
        bridge = run_bridge(KafkaIntake(publisher, rules), registry, mqtt)
        print(
            f"bridging {mqtt.subscription} on {mqtt.address} to Kafka at {kafka.broker} "
            f"(client id {mqtt.client_id}); Ctrl-C stops",
            file=sys.stderr,
        )
        stop.wait()
        bridge.stop()
    print(", ".join(f"{n} {k}" for k, n in sorted(bridge.counts.items())) or "no messages")
    return 0


def mqtt_args(p: argparse.ArgumentParser) -> None:
    """The bridge's flags: `--mqtt HOST:PORT` and `--mqtt-<field>` (also for `minhu serve`)."""
    from streams.service.mqtt import MqttSettings

    fields = MqttSettings.model_fields
    p.add_argument(
        "--mqtt",
        metavar="HOST:PORT",
        help=f"{fields['address'].description} (env MINHU_MQTT_ADDRESS)",
    )
    for name in MQTT_FLAGS:
        assert not is_secret(fields[name].annotation)
        p.add_argument(
            f"--mqtt-{name.replace('_', '-')}",
            dest=f"mqtt_{name}",
            type=int if name == "keepalive" else str,
            help=f"{fields[name].description} (env MINHU_MQTT_{name.upper()})",
        )
    p.add_argument("--mqtt-tls", action="store_true", help=fields["tls"].description)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "mqtt-bridge",
        help="take sensor gateways' alarms from an MQTT broker and publish them to Kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_args(b)
    kafka_args(b)
    mqtt_args(b)
    b.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics (minhu_mqtt_messages_total) on PORT/metrics",
    )
    b.add_argument(
        "--metrics-host",
        help="the address /metrics binds to (default 127.0.0.1: this machine only; "
        "env MINHU_METRICS_HOST)",
    )
    b.epilog = (
        "Secrets come from the environment only: MINHU_MQTT_PASSWORD (the bridge's MQTT "
        "login) and MINHU_SASL_PASSWORD (Kafka's)."
    )
    b.set_defaults(func=cmd_mqtt_bridge)
