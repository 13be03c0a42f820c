"""Notifications: a command hook, e-mail (SMTP) and a webhook (HTTP POST of JSON).

On the events of a request (``activated``, ``recall``, ``completed``, ``expired``,
``failed``, ``cancelled``) the service calls :meth:`Notifier.submit`; it never waits.
Each configured channel becomes one delivery job in a bounded queue; workers deliver
(SMTP and HTTP in a thread, the command as a subprocess), retry failures with
exponential backoff and log every outcome. A full queue drops the notification with
a warning: a slow mail relay must never hold up a call. Recall mode ``notify`` uses
the same path (the event ``recall``).

Channels per caller: ``[notify]`` command/email/webhook apply to every request;
``[[notify.callers]]`` add channels for one caller's requests.

Owns delivery only; it must not decide which events happen or what they mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from ccbs_isdn.config import NotifyConfig
from ccbs_isdn.runtime.logging import kv

log = logging.getLogger(__name__)

#: fields of a notification (the request as the control socket shows it + the event)
FIELDS = ("event", "id", "kind", "caller", "target", "route", "state", "reason", "created",
          "expires", "time")

SUBJECTS = {
    "activated": "Callback request {id} for {caller} -> {target} is active",
    "recall": "{target} is free: callback for {caller}",
    "completed": "Callback request {id} completed ({caller} -> {target})",
    "expired": "Callback request {id} expired ({caller} -> {target})",
    "failed": "Callback request {id} failed ({caller} -> {target}): {reason}",
    "cancelled": "Callback request {id} cancelled ({caller} -> {target})",
}


class DeliveryError(Exception):
    """One attempt failed; the worker retries (internal to this module)."""


@dataclass(slots=True)
class Job:
    channel: str  # command | email | webhook
    target: Any  # argv tuple | tuple of addresses | URL
    payload: dict[str, Any]
    attempt: int = 0
    created: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return f"{self.channel}:{self.payload.get('event')}:{self.payload.get('id')}"


def environment(payload: Mapping[str, Any]) -> dict[str, str]:
    """``CCBS_*`` variables for the command hook."""
    env = {}
    for key in FIELDS:
        value = payload.get(key)
        env[f"CCBS_{key.upper()}"] = "" if value is None else str(value)
    return env


class Notifier:
    """Bounded, retrying, non-blocking delivery of notifications."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        workers: int = 2,
        on_result: Callable[[str, str], None] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.workers = workers
        self.on_result = on_result or (lambda channel, outcome: None)
        self._sleep = sleep
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=config.queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._retrying: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._worker(), name=f"notify-{i}")
                       for i in range(self.workers)]

    def apply(self, config: NotifyConfig) -> None:
        """A reload: new channels apply to the next notification; queued jobs stay."""
        self.config = config
        if config.queue_size != self._queue.maxsize:
            old = self._queue
            self._queue = asyncio.Queue(maxsize=config.queue_size)
            while not old.empty():
                self._put(old.get_nowait())
            for task in self._tasks:  # workers wait on the old queue
                task.cancel()
            self._tasks = []
            self.start()

    async def stop(self, drain: float = 5.0) -> None:
        """Deliver what is queued for up to *drain* seconds, then give up."""
        if self._tasks and drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain)
        for task in [*self._tasks, *self._retrying]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._retrying, return_exceptions=True)
        self._tasks = []
        self._retrying = set()
        if not self._queue.empty():
            log.warning("notifications not delivered at shutdown",
                        extra=kv(count=self._queue.qsize()))

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._retrying)

    # --------------------------------------------------------------------- submit

    def channels_for(self, caller: str) -> list[tuple[str, Any]]:
        cfg = self.config
        channels: list[tuple[str, Any]] = []
        commands = [cfg.command] if cfg.command else []
        emails = list(cfg.email)
        webhooks = [cfg.webhook] if cfg.webhook else []
        for extra in cfg.callers:
            if extra.extension == caller:
                if extra.command:
                    commands.append(extra.command)
                emails.extend(e for e in extra.email if e not in emails)
                if extra.webhook and extra.webhook not in webhooks:
                    webhooks.append(extra.webhook)
        channels.extend(("command", tuple(c)) for c in commands)
        if emails:
            channels.append(("email", tuple(emails)))
        channels.extend(("webhook", url) for url in webhooks)
        return channels

    def submit(self, event: str, request: Mapping[str, Any]) -> int:
        """Queue *event* for *request* on every channel; returns jobs queued. Never blocks."""
        if event not in self.config.events:
            return 0
        payload = {key: request.get(key) for key in FIELDS if key in request}
        payload["event"] = event
        payload.setdefault("time", time.time())
        queued = 0
        for channel, target in self.channels_for(str(request.get("caller", ""))):
            if self._put(Job(channel, target, payload)):
                queued += 1
        return queued

    def _put(self, job: Job) -> bool:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            self.on_result(job.channel, "dropped")
            log.warning("notification queue full, dropped",
                        extra=kv(job=job.label, queue_size=self._queue.maxsize))
            return False
        return True

    # -------------------------------------------------------------------- workers

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            job = await queue.get()
            try:
                await self._attempt(job)
            finally:
                queue.task_done()

    async def _attempt(self, job: Job) -> None:
        job.attempt += 1
        try:
            await asyncio.wait_for(self._deliver(job), self.config.timeout + 1)
        except (DeliveryError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            if job.attempt >= self.config.retries:
                self.failed += 1
                self.on_result(job.channel, "failed")
                log.error("notification failed, giving up",
                          extra=kv(job=job.label, attempts=job.attempt, error=reason))
                return
            delay = self.config.backoff * 2 ** (job.attempt - 1)
            self.on_result(job.channel, "retry")
            log.warning("notification failed, will retry",
                        extra=kv(job=job.label, attempt=job.attempt, retry_in=delay,
                                 error=reason))
            task = asyncio.create_task(self._retry_later(job, delay))
            self._retrying.add(task)
            task.add_done_callback(self._retrying.discard)
            return
        except Exception:  # a bug in one channel must not stop the workers
            self.failed += 1
            self.on_result(job.channel, "failed")
            log.exception("notification crashed", extra=kv(job=job.label))
            return
        self.delivered += 1
        self.on_result(job.channel, "ok")
        log.info("notification delivered", extra=kv(job=job.label, attempt=job.attempt))

    async def _retry_later(self, job: Job, delay: float) -> None:
        await self._sleep(delay)
        self._put(job)

    async def _deliver(self, job: Job) -> None:
        if job.channel == "command":
            await self._run_command(job.target, job.payload)
        elif job.channel == "email":
            await asyncio.to_thread(self._send_mail, job.target, job.payload)
        elif job.channel == "webhook":
            await asyncio.to_thread(self._post_webhook, job.target, job.payload)
        else:
            raise DeliveryError(f"unknown channel {job.channel}")

    # ------------------------------------------------------------------ channels

    async def _run_command(self, argv: tuple[str, ...], payload: dict[str, Any]) -> None:
        env = {**os.environ, **environment(payload)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise DeliveryError(f"cannot run {argv[0]}: {exc.strerror}") from None
        body = (json.dumps(payload, default=str) + "\n").encode()
        try:
            _, err = await asyncio.wait_for(proc.communicate(body), self.config.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DeliveryError(f"{argv[0]} timed out after {self.config.timeout:g} s") from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            raise DeliveryError(f"{argv[0]} exited with {proc.returncode}"
                                + (f": {tail[0]}" if tail else ""))

    def _send_mail(self, recipients: tuple[str, ...], payload: dict[str, Any]) -> None:
        cfg = self.config
        message = EmailMessage()
        message["From"] = cfg.smtp_from
        message["To"] = ", ".join(recipients)
        values = {k: ("" if payload.get(k) is None else payload.get(k)) for k in FIELDS}
        message["Subject"] = SUBJECTS.get(str(payload["event"]), "{event}").format(**values)
        message["X-CCBS-Event"] = str(payload["event"])
        lines = [f"{key}: {values[key]}" for key in FIELDS if values[key] != ""]
        message.set_content("\n".join(lines) + "\n")
        try:
            with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout) as smtp:
                if cfg.smtp_starttls:
                    smtp.starttls()
                if cfg.smtp_user:
                    smtp.login(cfg.smtp_user, _read_secret(cfg.smtp_password_file))
                smtp.send_message(message, from_addr=cfg.smtp_from, to_addrs=list(recipients))
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {cfg.smtp_host}:{cfg.smtp_port}: {exc}") from None

    def _post_webhook(self, url: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str).encode()
        request = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "ccbsd"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook {url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"webhook {url}: {getattr(exc, 'reason', exc)}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook {url}: HTTP {status}")


def _read_secret(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise DeliveryError(f"cannot read smtp_password_file {path}: {exc.strerror}") from None
