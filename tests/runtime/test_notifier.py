"""Notifications through a real SMTP sink, a real HTTP server and a real command."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ccbs_isdn.config import CallerNotifyConfig, NotifyConfig, default_config
from ccbs_isdn.runtime.notifier import Notifier

from .servers import HttpSink, SmtpSink

REQUEST = {"id": 17, "kind": "ccbs", "caller": "21", "target": "0301234567", "route": "isdn",
           "state": "activated", "reason": "", "created": 1700000000.0,
           "expires": 1700002700.0}


def notify_config(**changes: object) -> NotifyConfig:
    base = replace(default_config().notify, backoff=0.01, timeout=5.0, retries=3)
    return replace(base, **changes)


@pytest.fixture
async def smtp():
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def http():
    sink = HttpSink(asyncio.get_running_loop())
    yield sink
    sink.stop()


async def test_activation_is_mailed_to_global_and_caller_recipients(smtp: SmtpSink) -> None:
    config = notify_config(
        smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="box@example.org",
        email=("ops@example.org",),
        callers=(CallerNotifyConfig("21", ("anna@example.org",), "", ()),),
    )
    notifier = Notifier(config)
    notifier.start()
    assert notifier.submit("activated", REQUEST) == 1
    sender, recipients, message = await asyncio.wait_for(smtp.mails.get(), 10)
    await notifier.stop()
    assert sender == "box@example.org"
    assert recipients == ["ops@example.org", "anna@example.org"]
    assert message["Subject"] == "Callback request 17 for 21 -> 0301234567 is active"
    assert message["X-CCBS-Event"] == "activated"
    assert "target: 0301234567" in message.get_payload()
    assert notifier.delivered == 1


async def test_webhook_posts_json_and_retries_with_backoff(http: HttpSink) -> None:
    http.statuses = [500, 503]  # two failures, then success
    outcomes: list[tuple[str, str]] = []
    notifier = Notifier(notify_config(webhook=http.url),
                        on_result=lambda ch, out: outcomes.append((ch, out)))
    notifier.start()
    notifier.submit("expired", {**REQUEST, "state": "expired", "reason": "lifetime"})
    body = await asyncio.wait_for(http.bodies.get(), 10)
    await notifier.stop()
    assert body["content_type"] == "application/json"
    assert body["json"]["event"] == "expired"
    assert body["json"]["id"] == 17 and body["json"]["reason"] == "lifetime"
    assert http.attempts == 3
    assert outcomes == [("webhook", "retry"), ("webhook", "retry"), ("webhook", "ok")]


async def test_webhook_gives_up_after_the_configured_attempts(http: HttpSink) -> None:
    http.statuses = [500] * 10
    done = asyncio.Event()
    outcomes: list[str] = []

    def record(channel: str, outcome: str) -> None:
        outcomes.append(outcome)
        if outcome == "failed":
            done.set()

    notifier = Notifier(notify_config(webhook=http.url, retries=2), on_result=record)
    notifier.start()
    notifier.submit("failed", REQUEST)
    await asyncio.wait_for(done.wait(), 10)
    await notifier.stop()
    assert outcomes == ["retry", "failed"]
    assert http.attempts == 2 and notifier.failed == 1


async def test_command_hook_gets_the_request_in_its_environment_and_stdin(
    tmp_path: Path,
) -> None:
    out = tmp_path / "hook.json"
    script = ("import json, os, sys; json.dump({'env': {k: v for k, v in os.environ.items() "
              "if k.startswith('CCBS_')}, 'stdin': json.load(sys.stdin)}, "
              f"open({str(out)!r}, 'w'))")
    done = asyncio.Event()
    notifier = Notifier(notify_config(command=(sys.executable, "-c", script)),
                        on_result=lambda ch, outcome: done.set())
    notifier.start()
    notifier.submit("recall", REQUEST)
    await asyncio.wait_for(done.wait(), 20)
    await notifier.stop()
    got = json.loads(out.read_text())
    assert got["env"]["CCBS_EVENT"] == "recall"
    assert got["env"]["CCBS_ID"] == "17"
    assert got["env"]["CCBS_CALLER"] == "21"
    assert got["env"]["CCBS_TARGET"] == "0301234567"
    assert got["stdin"]["route"] == "isdn"


async def test_failing_command_is_retried_then_logged(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    done = asyncio.Event()
    notifier = Notifier(
        notify_config(command=(sys.executable, "-c", "import sys; sys.exit('no phone')"),
                      retries=2),
        on_result=lambda ch, outcome: outcome == "failed" and done.set())
    notifier.start()
    notifier.submit("activated", REQUEST)
    await asyncio.wait_for(done.wait(), 20)
    await notifier.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert "notification failed, will retry" in messages
    assert "notification failed, giving up" in messages
    assert any("no phone" in str(getattr(r, "ctx", {}).get("error")) for r in caplog.records)


async def test_smtp_temporary_failure_is_retried(smtp: SmtpSink) -> None:
    smtp.refuse_next = 1
    notifier = Notifier(notify_config(smtp_host="127.0.0.1", smtp_port=smtp.port,
                                      email=("ops@example.org",)))
    notifier.start()
    notifier.submit("completed", REQUEST)
    _, _, message = await asyncio.wait_for(smtp.mails.get(), 10)
    await notifier.stop()
    assert message["Subject"] == "Callback request 17 completed (21 -> 0301234567)"


async def test_full_queue_drops_instead_of_blocking() -> None:
    outcomes: list[str] = []
    notifier = Notifier(notify_config(webhook="http://127.0.0.1:9/x", queue_size=2),
                        on_result=lambda ch, outcome: outcomes.append(outcome))
    # workers not started: nothing drains the queue
    assert [notifier.submit("activated", {**REQUEST, "id": i}) for i in range(4)] == [1, 1, 0, 0]
    assert notifier.dropped == 2 and outcomes == ["dropped", "dropped"]
    await notifier.stop(drain=0)


async def test_events_not_configured_are_not_sent(http: HttpSink) -> None:
    notifier = Notifier(notify_config(webhook=http.url, events=("expired",)))
    assert notifier.submit("activated", REQUEST) == 0
    assert notifier.submit("expired", REQUEST) == 1
    notifier.start()
    body = await asyncio.wait_for(http.bodies.get(), 10)
    await notifier.stop()
    assert body["json"]["event"] == "expired"


def test_channels_per_caller() -> None:
    config = notify_config(webhook="http://127.0.0.1/all", command=("/bin/true",),
                           callers=(CallerNotifyConfig("21", ("a@x",), "http://127.0.0.1/21",
                                                       ("/bin/echo", "21")),))
    notifier = Notifier(config)
    assert notifier.channels_for("22") == [("command", ("/bin/true",)),
                                           ("webhook", "http://127.0.0.1/all")]
    assert notifier.channels_for("21") == [
        ("command", ("/bin/true",)), ("command", ("/bin/echo", "21")), ("email", ("a@x",)),
        ("webhook", "http://127.0.0.1/all"), ("webhook", "http://127.0.0.1/21")]
