"""Small real servers for notification tests: an SMTP sink and an HTTP sink on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SmtpSink:
    """A minimal RFC 5321 server: accepts every mail and queues (envelope, message)."""

    def __init__(self) -> None:
        self.mails: asyncio.Queue[tuple[str, list[str], Message]] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self.refuse_next = 0  # answer 451 to this many DATA commands

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(text: str) -> None:
            writer.write(text.encode() + b"\r\n")

        sender, recipients = "", []
        say("220 sink ESMTP")
        try:
            while line := await reader.readline():
                verb = line.decode(errors="replace").strip()
                upper = verb.upper()
                if upper.startswith(("EHLO", "HELO")):
                    say("250 sink")
                elif upper.startswith("MAIL FROM:"):
                    sender, recipients = verb[10:].strip().strip("<>"), []
                    say("250 ok")
                elif upper.startswith("RCPT TO:"):
                    recipients.append(verb[8:].strip().strip("<>"))
                    say("250 ok")
                elif upper == "DATA":
                    say("354 go ahead")
                    await writer.drain()
                    data = b""
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    if self.refuse_next:
                        self.refuse_next -= 1
                        say("451 try again later")
                    else:
                        await self.mails.put((sender, recipients, message_from_bytes(data)))
                        say("250 queued")
                elif upper == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    break
                elif upper in ("RSET", "NOOP"):
                    say("250 ok")
                else:
                    say("502 not implemented")
                await writer.drain()
        finally:
            writer.close()


class HttpSink:
    """ThreadingHTTPServer that answers POSTs with the scripted status codes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, statuses: list[int] | None = None):
        self.loop = loop
        self.bodies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.statuses = list(statuses or [])
        self.attempts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                sink.attempts += 1
                status = sink.statuses.pop(0) if sink.statuses else 200
                self.send_response(status)
                self.end_headers()
                if status == 200:
                    doc = {"content_type": self.headers.get("Content-Type"),
                           "path": self.path, "json": json.loads(body)}
                    sink.loop.call_soon_threadsafe(sink.bodies.put_nowait, doc)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
