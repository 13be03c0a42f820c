"""Prometheus metrics of ccbsd (prometheus_client, own registry).

``[metrics] mode``: ``off``; ``textfile`` — the registry is written atomically to a
``.prom`` file for node-exporter's textfile collector every ``interval`` seconds and at
shutdown; ``http`` — a loopback-only HTTP listener serves ``/metrics``.

Owns the metric definitions and their exposition. The service feeds it
(``observe_*`` calls); it must not read engine state on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile
from prometheus_client.exposition import start_http_server

from ccbs_isdn.config import MetricsConfig
from ccbs_isdn.runtime.logging import kv

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests_active = Gauge(
            "ccbs_requests_active", "Active CC requests by role and state",
            ["role", "state"], registry=r)
        self.requests_total = Counter(
            "ccbs_requests", "CC requests that ended, by outcome", ["outcome"], registry=r)
        self.refusals_total = Counter(
            "ccbs_refusals", "Requests refused, by reason", ["reason"], registry=r)
        self.events_total = Counter(
            "ccbs_engine_events", "Events handled by the engine, by type", ["type"],
            registry=r)
        self.handle_seconds = Histogram(
            "ccbs_engine_step_seconds", "Time to handle one input incl. persisting it",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r)
        self.line_up = Gauge(
            "ccbs_line_up", "1 when a controller/bridge is up", ["kind", "id"], registry=r)
        self.notifications_total = Counter(
            "ccbs_notifications", "Notification deliveries by channel and result",
            ["channel", "result"], registry=r)
        self.control_total = Counter(
            "ccbs_control_requests", "Control socket requests by command and result",
            ["command", "result"], registry=r)
        self.store_writable = Gauge(
            "ccbs_store_writable", "1 while the request store accepts writes", registry=r)
        self.reloads_total = Counter(
            "ccbs_reloads", "Configuration reloads by result", ["result"], registry=r)
        self.store_writable.set(1)
        self._config: MetricsConfig | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: Any = None
        self.http_port: int | None = None
        self._active_labels: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------- observations

    def observe_active(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Set the active-request gauge from (role, state) → count; stale labels drop to 0."""
        for labels in self._active_labels - set(counts):
            self.requests_active.labels(*labels).set(0)
        for labels, count in counts.items():
            self.requests_active.labels(*labels).set(count)
        self._active_labels |= set(counts)

    def observe_lines(self, lines: Iterable[Mapping[str, Any]]) -> None:
        for line in lines:
            self.line_up.labels(str(line.get("kind")), str(line.get("id"))).set(
                1 if line.get("up") else 0)

    def notification(self, channel: str, result: str) -> None:
        self.notifications_total.labels(channel, result).inc()

    def control(self, command: str, result: str) -> None:
        self.control_total.labels(command, result).inc()

    # ------------------------------------------------------------------ exposition

    async def start(self, config: MetricsConfig) -> None:
        self._config = config
        if config.mode == "textfile":
            self._task = asyncio.create_task(self._textfile_loop(config), name="metrics")
        elif config.mode == "http":
            server, _thread = start_http_server(config.port, addr=config.address,
                                                registry=self.registry)
            self._http = server
            self.http_port = server.server_address[1]
            log.info("metrics listening", extra=kv(address=config.address,
                                                   port=self.http_port))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            if self._config is not None:
                self.write_textfile(self._config.textfile)
        if self._http is not None:
            server = self._http
            self._http = None
            await asyncio.to_thread(server.shutdown)
            server.server_close()
            self.http_port = None
        self._config = None

    async def apply(self, config: MetricsConfig) -> None:
        """A reload: restart the exposition only when its settings changed."""
        if config == self._config:
            return
        await self.stop()
        await self.start(config)

    def write_textfile(self, path: str) -> None:
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            # write_to_textfile writes a temporary file and renames it: atomic for readers
            write_to_textfile(path, self.registry)
        except OSError as exc:
            log.warning("cannot write metrics textfile", extra=kv(path=path, error=exc))

    async def _textfile_loop(self, config: MetricsConfig) -> None:
        while True:
            self.write_textfile(config.textfile)
            await asyncio.sleep(config.interval)
