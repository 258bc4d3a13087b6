#!/usr/bin/env python3
"""Publish, subscribe to and monitor signed mam job events over MQTT (TLS, private broker)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

# Installed into a user's workspace: leave no __pycache__ behind in .agents/.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mqtt_common as mc  # noqa: E402 - found beside this file, wherever it is installed

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78

PROG = "mam_mqtt"
CONNECT_TIMEOUT_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 10.0


class Failure(Exception):
    """A one-line, user-facing reason to stop, with the exit code to stop with."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise Failure(
            "the Python package paho-mqtt is missing; install it with: "
            f"{mc.paho_install_hint_here()}",
            EXIT_UNAVAILABLE,
        ) from None
    return mqtt


def _failed(reason: Any) -> bool:
    # paho 2.x hands over a ReasonCode, 1.x a plain int.
    is_failure = getattr(reason, "is_failure", None)
    return bool(is_failure) if is_failure is not None else reason != 0


class Broker:
    """A connected paho client with its network loop running in a background thread."""

    def __init__(self, mqtt: Any, settings: mc.BrokerSettings, role: str) -> None:
        self.settings = settings
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.refusal: str | None = None
        self.subscriptions: list[str] = []
        client_id = f"{settings.client_id_prefix}-{role}-{os.getpid()}-{secrets.token_hex(3)}"
        if hasattr(mqtt, "CallbackAPIVersion"):
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
            )
        else:
            self.client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            context = ssl.create_default_context(cafile=settings.ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe

    # Both callback APIs: 1.x passes (client, userdata, flags, rc), 2.x adds properties.
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, *rest: Any) -> None:
        if _failed(reason):
            self.refusal = str(reason)
        else:
            for topic in self.subscriptions:
                client.subscribe(topic, qos=1)
        self.connected.set()

    # 1.x passes granted QoS ints (128 = refused), 2.x a list of ReasonCodes.
    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, granted: Any,
                      *rest: Any) -> None:
        codes = granted if isinstance(granted, (list, tuple)) else [granted]
        if any(_failed(code) if not isinstance(code, int) else code >= 0x80 for code in codes):
            self.refusal = "subscription refused"
        self.subscribed.set()

    def connect(self) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            self.client.connect(self.settings.host, self.settings.port, keepalive=30)
        except ssl.SSLError as exc:
            raise Failure(
                f"TLS with the MQTT broker at {where} failed ({exc.reason or exc}); "
                "check MAM_MQTT_CA_FILE names the CA that signed the broker's certificate"
            ) from exc
        except OSError as exc:
            raise Failure(
                f"cannot reach the MQTT broker at {where} ({exc.strerror or exc}); "
                "check that it runs and MAM_MQTT_HOST/MAM_MQTT_PORT are right"
            ) from exc
        self.client.loop_start()
        if not self.connected.wait(CONNECT_TIMEOUT_SECONDS):
            self.close()
            raise Failure(f"the MQTT broker at {where} did not answer within "
                          f"{CONNECT_TIMEOUT_SECONDS:.0f} s; check the broker's log")
        if self.refusal is not None:
            self.close()
            raise Failure(
                f"the MQTT broker at {where} refused us ({self.refusal}); "
                "check MAM_MQTT_USERNAME and MAM_MQTT_PASSWORD"
            )
        if self.subscriptions and (
            not self.subscribed.wait(CONNECT_TIMEOUT_SECONDS) or self.refusal is not None
        ):
            self.close()
            raise Failure(
                f"the MQTT broker at {where} did not grant {', '.join(self.subscriptions)}; "
                "its ACL must let this user read there (see MAM_MQTT_TOPIC_PREFIX)"
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def load_settings(environ: Mapping[str, str]) -> tuple[bytes, mc.BrokerSettings, Path]:
    return (
        mc.hmac_key_from_env(environ),
        mc.BrokerSettings.from_env(environ),
        mc.state_dir_from_env(environ),
    )


def cmd_publish(mqtt: Any, args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    key, settings, state_dir = load_settings(environ)
    try:
        data = json.loads(args.data) if args.data is not None else None
    except ValueError as exc:
        raise Failure(f"--data is not valid JSON ({exc}); quote it, e.g. --data '{{\"ok\": true}}'",
                      EXIT_USAGE) from exc
    topic = mc.envelope_topic(settings.topic_prefix, args.job)
    broker = Broker(mqtt, settings, "pub")
    broker.connect()
    try:
        # Reserve the number only once connected; a gap after a failed publish is harmless.
        seq = mc.SequenceStore(state_dir, "publish").next(args.job)
        envelope = mc.sign_envelope(key, args.job, seq, args.event, data, round(time.time(), 3))
        info = broker.client.publish(topic, envelope.to_json(), qos=1)
        info.wait_for_publish(PUBLISH_TIMEOUT_SECONDS)
        if not info.is_published():
            raise Failure(f"the broker did not confirm event {args.event} for job {args.job} "
                          f"within {PUBLISH_TIMEOUT_SECONDS:.0f} s; publish it again")
    finally:
        broker.close()
    print(envelope.to_json(), flush=True)
    return EXIT_OK


def kill_session(job: str, environ: Mapping[str, str]) -> None:
    tmux = environ.get("MAM_TMUX") or shutil.which("tmux") or "tmux"
    command = [tmux]
    if environ.get("MAM_TMUX_SOCKET"):
        command += ["-L", environ["MAM_TMUX_SOCKET"]]
    # "=job" matches exactly that session; a bare name would also hit job0, job-old, ...
    command += ["kill-session", "-t", f"={job}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"could not run {' '.join(command)} ({exc}); end the session by hand")
        return
    if result.returncode == 0:
        say(f"job {job} finished; killed tmux session ={job}")
    else:
        detail = (result.stderr or result.stdout).strip().splitlines()
        say(f"job {job} finished; no tmux session ={job} to kill ({detail[0] if detail else ''})")


class Monitor:
    """Verifies every message, prints the accepted ones, acts on verified terminal events."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.key, self.settings, state_dir = load_settings(environ)
        self.environ = environ
        self.job: str | None = mc.check_job_id(args.job) if args.job else None
        self.on_terminal: str | None = args.on_terminal
        self.exit_on_terminal: bool = args.command == "subscribe"
        self.store = mc.SequenceStore(state_dir, "accept")
        skew = environ.get("MAM_MQTT_MAX_SKEW", "").strip() or str(mc.DEFAULT_MAX_SKEW_SECONDS)
        try:
            self.max_skew = float(skew)
        except ValueError:
            raise mc.ConfigError(f"MAM_MQTT_MAX_SKEW={skew} is not a number of seconds; "
                                 "use e.g. 600") from None
        self.done = threading.Event()
        self.saw_terminal = False

    def topic(self) -> str:
        if self.job:
            return mc.envelope_topic(self.settings.topic_prefix, self.job)
        return f"{self.settings.topic_prefix}/jobs/+/events"

    def reject(self, topic: str, reason: str) -> None:
        say(f"rejected message on {topic}: {reason}")

    def on_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic = str(message.topic)
        try:
            envelope = mc.verify_envelope(self.key, bytes(message.payload), time.time(),
                                          self.max_skew)
        except mc.EnvelopeError as exc:
            self.reject(topic, str(exc))
            return
        topic_job = mc.job_from_topic(self.settings.topic_prefix, topic)
        if topic_job != envelope.job:
            self.reject(topic, f"signed for job {envelope.job} but sent on another job's topic")
            return
        try:
            fresh = self.store.accept(envelope.job, envelope.seq)
        except mc.ConfigError as exc:
            self.reject(topic, str(exc))
            return
        if not fresh:
            self.reject(topic, f"replay: job {envelope.job} seq {envelope.seq} is not newer "
                               "than one already accepted")
            return
        print(envelope.to_json(), flush=True)
        if envelope.terminal:
            self.saw_terminal = True
            if self.on_terminal == "kill-session":
                kill_session(envelope.job, self.environ)
            if self.exit_on_terminal:
                self.done.set()

    def run(self, mqtt: Any, timeout: float | None) -> int:
        broker = Broker(mqtt, self.settings, "mon")
        broker.subscriptions.append(self.topic())
        broker.client.on_message = self.on_message
        broker.connect()
        say(f"listening on {self.topic()} at {self.settings.host}:{self.settings.port}")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.done.wait(0.2):
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            broker.close()
        if self.exit_on_terminal and not self.saw_terminal:
            say(f"no terminal event for job {self.job} before the timeout")
            return EXIT_FAILED
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mam_mqtt.py",
        description="Signed job events over MQTT. Settings come from the environment and the "
        "workspace .env (MAM_MQTT_*, MAM_HMAC_KEY, MAM_STATE_DIR).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    publish = commands.add_parser("publish", help="publish one signed event for a job")
    publish.add_argument("--job", required=True, help="job id (also its tmux session name)")
    publish.add_argument("--event", required=True, help="event name; done, failed and cancelled "
                         "are terminal")
    publish.add_argument("--data", help="event data as JSON (default: null)")
    for name, text in (
        ("monitor", "print every verified event as one JSON line; report rejected ones"),
        ("subscribe", "like monitor for one --job, exiting 0 after its terminal event"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--job", required=name == "subscribe", help="only this job")
        sub.add_argument("--on-terminal", choices=["kill-session"],
                         help="on a verified terminal event, kill the job's tmux session")
        sub.add_argument("--timeout", type=float, help="stop after this many seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    # A service manager stops us with SIGTERM: unwind through the finally blocks, exit 0.
    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(EXIT_OK)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        mqtt = import_paho()
        mc.load_env(os.environ)
        if args.command == "publish":
            return cmd_publish(mqtt, args, os.environ)
        return Monitor(args, os.environ).run(mqtt, args.timeout)
    except mc.ConfigError as exc:
        say(f"error: {exc}")
        return EXIT_CONFIG
    except mc.EnvelopeError as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    except Failure as exc:
        say(f"error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
