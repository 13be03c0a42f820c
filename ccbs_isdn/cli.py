"""``ccbsctl``: the administrator's command line (click), a blocking client of ccbsd.

Root options: ``--json`` (one JSON document on stdout; ``events --follow`` prints one
JSON object per line instead), ``--socket PATH`` (or ``$CCBS_SOCKET``).
Exit codes follow sysexits: 0 ok, 1 failure (refused, not found), 2 usage,
69 daemon unavailable, 75 temporary failure, 77 permission denied, 78 configuration
error.

Shell completion (bash; zsh and fish likewise)::

    eval "$(_CCBSCTL_COMPLETE=bash_source ccbsctl)"

Owns the command line and its output (tables for people, JSON for programs) and the
blocking client of the control protocol (``runtime/control.py``). It decides nothing
about CCBS; ``diagram`` and ``config check`` work without a running daemon.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from ccbs_isdn.cli_facility import facility

DEFAULT_SOCKET = "/run/ccbs-isdn/control.sock"
PROTOCOL_VERSION = 1

EX_FAILURE = 1
EX_USAGE = 2
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78


# ------------------------------------------------------------------ errors / output


class CtlError(click.ClickException):
    """A failure with a sysexits code, printed as text or (with --json) as JSON."""

    def __init__(self, message: str, *, exit_code: int = EX_FAILURE, code: str = "error",
                 hint: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance
        self.code = code
        self.hint = hint
        self.details = details or {}
        # decided now: when click prints the error, the context is already gone
        ctx = click.get_current_context(silent=True)
        self.as_json = ctx is not None and bool((ctx.find_root().obj or {}).get("json"))

    def show(self, file: Any = None) -> None:
        if self.as_json:
            error = {"code": self.code, "message": self.message, "exit": self.exit_code,
                     **self.details}
            if self.hint:
                error["hint"] = self.hint
            click.echo(json.dumps({"ok": False, "error": error}, indent=2))
            return
        click.echo(f"ccbsctl: {self.message}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


def _json_mode(ctx: click.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("json"))


def _emit(ctx: click.Context, document: Any, human: str) -> None:
    if _json_mode(ctx):
        click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(human)


# ------------------------------------------------------------------------ client


class Client:
    """Blocking client of the control socket: one connection per command."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise CtlError(
                f"ccbsd is not running (no control socket at {self.path})",
                exit_code=EX_UNAVAILABLE, code="unavailable",
                hint="start it with 'systemctl start ccbsd', or pass --socket / "
                     "$CCBS_SOCKET if it listens elsewhere",
            ) from None
        except PermissionError:
            sock.close()
            group = _socket_group(self.path)
            raise CtlError(
                f"permission denied on {self.path}",
                exit_code=EX_NOPERM, code="permission-denied",
                hint=f"add your user to group {group!r} (usermod -aG {group} $USER) and "
                     "log in again, or use sudo",
            ) from None
        except TimeoutError:
            sock.close()
            raise CtlError("ccbsd does not answer (connect timed out)",
                           exit_code=EX_TEMPFAIL, code="timeout") from None
        except OSError as exc:
            sock.close()
            raise CtlError(f"cannot connect to {self.path}: {exc.strerror}",
                           exit_code=EX_UNAVAILABLE, code="unavailable") from None
        return sock

    @staticmethod
    def _request(command: str, args: dict[str, Any]) -> bytes:
        doc = {"v": PROTOCOL_VERSION, "cmd": command,
               "args": {k: v for k, v in args.items() if v is not None}}
        return (json.dumps(doc) + "\n").encode()

    @staticmethod
    def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise CtlError("ccbsd does not answer (timed out)", exit_code=EX_TEMPFAIL,
                               code="timeout") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if buffer.strip():
                    raise CtlError("ccbsd closed the connection mid-reply",
                                   exit_code=EX_TEMPFAIL, code="protocol")
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError:
                    raise CtlError("ccbsd sent something that is not JSON",
                                   exit_code=EX_FAILURE, code="protocol") from None
                if not isinstance(doc, dict):
                    raise CtlError("ccbsd sent an unexpected reply", code="protocol")
                yield doc

    @staticmethod
    def _result(reply: dict[str, Any]) -> Any:
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        details = {k: v for k, v in error.items() if k not in ("code", "message", "exit")}
        code = str(error.get("code", "error"))
        raise CtlError(str(error.get("message", "failed")), exit_code=int(error.get("exit", 1)),
                       code=code, details=details,
                       hint=("log in as root or a member of the admin group"
                             if code == "permission-denied" else ""))

    def call(self, command: str, **args: Any) -> Any:
        with self._connect() as sock:
            sock.sendall(self._request(command, args))
            for reply in self._lines(sock):
                return self._result(reply)
        raise CtlError("ccbsd closed the connection without a reply", exit_code=EX_TEMPFAIL,
                       code="protocol")

    def stream(self, command: str, **args: Any) -> Iterator[dict[str, Any]]:
        """First the command's result, then each streamed ``event`` (forever)."""
        sock = self._connect()
        sock.settimeout(None)  # following waits as long as the user wants
        try:
            sock.sendall(self._request(command, args))
            first = True
            for reply in self._lines(sock):
                if first:
                    first = False
                    yield {"result": self._result(reply)}
                elif "event" in reply:
                    yield reply["event"]
        finally:
            sock.close()


def _socket_group(path: str) -> str:
    try:
        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        return "ccbs-isdn"


def _client(ctx: click.Context) -> Client:
    return Client(ctx.find_root().obj["socket"])


# ------------------------------------------------------------------- formatting


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds}s"
    if seconds < 3600:
        return f"{sign}{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{sign}{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


def format_status(status: dict[str, Any]) -> str:
    now = float(status.get("now") or time.time())
    requests = status.get("requests", [])
    out = [f"Requests: {len(requests)} active"]
    if requests:
        rows = [[
            _cell(r.get("id")), _cell(r.get("caller")), _cell(r.get("target")),
            _cell(r.get("route")), _cell(r.get("state")),
            format_duration(now - r["created"]) if r.get("created") else "-",
            format_duration(r["expires"] - now) if r.get("expires") else "-",
            _cell(r.get("reason")),
        ] for r in requests]
        out.append(table(["ID", "CALLER", "TARGET", "ROUTE", "STATE", "AGE", "EXPIRES",
                          "REASON"], rows))
    lines = status.get("lines", [])
    out.append("")
    out.append(f"Lines: {sum(1 for x in lines if x.get('up'))} of {len(lines)} up")
    if lines:
        rows = [[_cell(x.get("kind")), _cell(x.get("id")), _cell(x.get("name")),
                 "up" if x.get("up") else "DOWN", _cell(x.get("detail"))] for x in lines]
        out.append(table(["KIND", "ID", "NAME", "STATE", "DETAIL"], rows))
    daemon = status.get("daemon") or {}
    if daemon:
        out.append("")
        out.append(f"ccbsd {daemon.get('version', '?')} pid {daemon.get('pid', '?')}, "
                   f"up {format_duration(daemon.get('uptime'))}"
                   + (f", trace {daemon['trace']}" if daemon.get("trace") else ""))
    return "\n".join(out)


def format_request(req: dict[str, Any]) -> str:
    keys = ["id", "kind", "caller", "target", "route", "state", "reason", "recall_mode",
            "ctrl", "reference"]
    out = []
    for key in keys:
        if req.get(key) not in (None, ""):
            out.append(f"{key + ':':<13}{req[key]}")
    for key in ("created", "expires", "updated"):
        if req.get(key):
            out.append(f"{key + ':':<13}{format_time(req[key])}")
    history = req.get("history", [])
    out.append("")
    out.append(f"History ({len(history)}):")
    rows = [[format_time(h.get("time")), _cell(h.get("event")),
             f"{_cell(h.get('old_state'))} -> {_cell(h.get('new_state'))}",
             _cell(h.get("actor")), _cell(h.get("detail"))] for h in history]
    if rows:
        out.append(table(["TIME", "EVENT", "STATE", "ACTOR", "DETAIL"], rows))
    return "\n".join(out)


def format_event(event: dict[str, Any]) -> str:
    parts = [format_time(event.get("time")), _cell(event.get("event"))]
    for key in ("id", "caller", "target", "route", "state", "reason", "detail"):
        if event.get(key) not in (None, ""):
            parts.append(f"{key}={event[key]}")
    return " ".join(parts)


# --------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option(
    "--socket",
    "socket_path",
    default=DEFAULT_SOCKET,
    envvar="CCBS_SOCKET",
    show_default=True,
    help="Control socket of ccbsd.",
)
@click.pass_context
def cli(ctx: click.Context, as_json: bool, socket_path: str) -> None:
    """Show and manage Completion of Calls to Busy Subscriber requests.

    Shell completion: eval "$(_CCBSCTL_COMPLETE=bash_source ccbsctl)"
    """
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json
    ctx.obj["socket"] = socket_path


cli.add_command(facility)


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Pending requests (id, caller, target, route, state, age, expiry) and line state."""
    result = _client(ctx).call("status")
    _emit(ctx, result, format_status(result))


@cli.command()
@click.argument("request_id", metavar="ID")
@click.pass_context
def show(ctx: click.Context, request_id: str) -> None:
    """One request with its full history."""
    result = _client(ctx).call("show", id=request_id)
    _emit(ctx, result, format_request(result))


@cli.command()
@click.argument("request_id", metavar="[ID]", required=False)
@click.option("--caller", metavar="EXT", help="Cancel every request of this caller.")
@click.option("--all", "everything", is_flag=True, help="Cancel every request.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --all.")
@click.pass_context
def cancel(ctx: click.Context, request_id: str | None, caller: str | None, everything: bool,
           yes: bool) -> None:
    """Cancel a request (ID), all of one caller (--caller EXT) or all (--all)."""
    chosen = [x for x in (request_id, caller, everything or None) if x is not None]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of ID, --caller EXT or --all")
    if caller is not None and not caller.isdigit():
        raise click.UsageError(f"--caller must be an extension (digits), not {caller!r}")
    if everything and not yes:
        if not sys.stdin.isatty():
            raise CtlError("refusing to cancel all requests without confirmation",
                           exit_code=EX_USAGE, code="not-confirmed",
                           hint="add --yes to cancel every request non-interactively")
        click.confirm("Cancel ALL pending requests?", abort=True, err=True)
    result = _client(ctx).call("cancel", id=request_id, caller=caller,
                               all=True if everything else None)
    ids = result.get("cancelled", [])
    _emit(ctx, result, f"cancelled {len(ids)} request(s)" + (": " + ", ".join(map(str, ids))
                                                            if ids else ""))


@cli.command()
@click.option("--from", "caller", required=True, metavar="EXT", help="The caller (extension).")
@click.option("--to", "target", required=True, metavar="NUMBER", help="The busy party.")
@click.pass_context
def request(ctx: click.Context, caller: str, target: str) -> None:
    """Book a request for EXT toward NUMBER without a prior call."""
    for name, value in (("--from", caller), ("--to", target)):
        if not value.isdigit():
            raise click.UsageError(f"{name} must be digits, not {value!r}")
    result = _client(ctx).call("request", caller=caller, target=target)
    _emit(ctx, result, f"request {result.get('id')} {result.get('state', 'accepted')}: "
                       f"{caller} -> {target}" + (f" via {result['route']}"
                                                  if result.get("route") else ""))


@cli.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events.")
@click.option("--last", "-n", default=20, show_default=True, type=click.IntRange(0, 10000),
              help="How many recent events to print first.")
@click.pass_context
def events(ctx: click.Context, follow: bool, last: int) -> None:
    """Recent request events; --follow streams them live (JSON: one object per line)."""
    client = _client(ctx)
    as_json = _json_mode(ctx)
    if not follow:
        result = client.call("events", last=last)
        _emit(ctx, result, "\n".join(format_event(e) for e in result.get("events", []))
              or "(no events)")
        return
    try:
        for item in client.stream("events", follow=True, last=last):
            batch = item["result"].get("events", []) if "result" in item else [item]
            for event in batch:
                click.echo(json.dumps(event, ensure_ascii=False, default=str) if as_json
                           else format_event(event))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return
    raise CtlError("ccbsd closed the event stream (stopping?)", exit_code=EX_TEMPFAIL,
                   code="closed")


@cli.command()
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Re-read the configuration (like systemctl reload ccbsd)."""
    result = _client(ctx).call("reload")
    _emit(ctx, result, "configuration reloaded: " + ", ".join(result.get("files", [])))


@cli.group()
def trace() -> None:
    """Facility/AT trace file (hex + decoded) for a support case."""


@trace.command("start")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.pass_context
def trace_start(ctx: click.Context, file: str | None) -> None:
    """Start writing the trace (FILE, or [daemon] trace_file)."""
    path = os.path.abspath(file) if file else None
    result = _client(ctx).call("trace", action="start", file=path)
    _emit(ctx, result, f"tracing to {result.get('file')}")


@trace.command("stop")
@click.pass_context
def trace_stop(ctx: click.Context) -> None:
    """Stop the trace."""
    result = _client(ctx).call("trace", action="stop")
    _emit(ctx, result, "trace stopped" + (f" ({result['lines']} lines)"
                                         if result.get("lines") is not None else ""))


# ---------------------------------------------------------------------- diagram


def _tables() -> dict[str, dict[str, Any]]:
    # the engine's own rulebooks (pure data; importing them does no I/O)
    from ccbs_isdn.engine.machine import diagram_data

    return diagram_data()


def _node(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _label(t: dict[str, Any]) -> str:
    guards = [*t.get("conditions", []), *("not " + u for u in t.get("unless", []))]
    trigger: str = t["trigger"]
    return trigger + (f" [{', '.join(guards)}]" if guards else "")


def render_mermaid(tables: dict[str, dict[str, Any]]) -> str:
    out = ["stateDiagram-v2"]
    for role, spec in tables.items():
        out.append(f"    state {_node(role)} {{")
        if spec.get("initial"):
            out.append(f"        [*] --> {_node(role)}_{_node(spec['initial'])}")
        for state in spec.get("states", []):
            out.append(f"        state \"{state}\" as {_node(role)}_{_node(state)}")
        for t in spec.get("transitions", []):
            out.append(f"        {_node(role)}_{_node(t['source'])} --> "
                       f"{_node(role)}_{_node(t['dest'])} : {_label(t)}")
        for state in spec.get("final", []):
            out.append(f"        {_node(role)}_{_node(state)} --> [*]")
        out.append("    }")
    return "\n".join(out) + "\n"


def render_dot(tables: dict[str, dict[str, Any]]) -> str:
    out = ["digraph ccbs {", "  rankdir=LR;", '  node [shape=box, style=rounded, '
           'fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
    for role, spec in tables.items():
        out.append(f"  subgraph cluster_{_node(role)} {{")
        out.append(f'    label="{role}";')
        for state in spec.get("states", []):
            shape = ""
            if state == spec.get("initial"):
                shape = ", penwidth=2"
            elif state in spec.get("final", []):
                shape = ", peripheries=2"
            out.append(f'    "{role}.{state}" [label="{state}"{shape}];')
        for t in spec.get("transitions", []):
            style = ", style=dashed" if t.get("internal") else ""
            out.append(f'    "{role}.{t["source"]}" -> "{role}.{t["dest"]}" '
                       f'[label="{_label(t)}"{style}];')
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg", "png"]),
              default="mermaid", show_default=True)
@click.option("--role", "roles", multiple=True, help="Only these roles (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.pass_context
def diagram(ctx: click.Context, fmt: str, roles: tuple[str, ...], output: str | None) -> None:
    """The engine's state machines, drawn from its own transition tables."""
    tables = _tables()
    if roles:
        unknown = [r for r in roles if r not in tables]
        if unknown:
            raise click.UsageError(f"unknown role(s) {', '.join(unknown)}; known: "
                                   + ", ".join(tables))
        tables = {r: tables[r] for r in roles}
    if fmt == "mermaid":
        data: bytes = render_mermaid(tables).encode()
    else:
        source = render_dot(tables)
        if fmt == "dot":
            data = source.encode()
        else:
            dot = shutil.which("dot")
            if dot is None:
                raise CtlError("the graphviz 'dot' program is missing", exit_code=EX_UNAVAILABLE,
                               code="unavailable", hint="apt-get install graphviz")
            done = subprocess.run([dot, f"-T{fmt}"], input=source.encode(),
                                  capture_output=True, check=False)
            if done.returncode != 0:
                raise CtlError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
            data = done.stdout
    if output:
        with open(output, "wb") as fh:
            fh.write(data)
        if _json_mode(ctx):
            click.echo(json.dumps({"ok": True, "file": output, "format": fmt,
                                   "bytes": len(data)}))
        return
    if fmt == "png" and sys.stdout.isatty():
        raise click.UsageError("refusing to write PNG to a terminal; use -o FILE")
    if _json_mode(ctx) and fmt in ("mermaid", "dot"):
        click.echo(json.dumps({"format": fmt, "source": data.decode(), "roles": tables},
                              indent=2))
        return
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


# ----------------------------------------------------------------------- config


@cli.group()
def config() -> None:
    """Configuration files."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--no-conf-d", is_flag=True, help="Do not read conf.d/*.toml next to FILE.")
@click.pass_context
def config_check(ctx: click.Context, file: str | None, no_conf_d: bool) -> None:
    """Validate FILE (default /etc/ccbs-isdn/ccbsd.toml, plus its conf.d/*.toml)."""
    from ccbs_isdn.config import DEFAULT_CONFIG, load_config
    from ccbs_isdn.errors import ConfigError

    path = file or os.environ.get("CCBS_CONFIG") or DEFAULT_CONFIG
    try:
        loaded = load_config(path, conf_d=not no_conf_d)
    except ConfigError as exc:
        raise CtlError(str(exc), exit_code=EX_CONFIG, code="config-error",
                       details={"file": exc.file, "key": exc.key,
                                "expected": exc.expected}) from None
    summary = {
        "ok": True,
        "files": list(loaded.sources),
        "controllers": len(loaded.capi.controllers) if loaded.capi.enabled else 0,
        "ports": len(loaded.fxs.ports) if loaded.fxs.enabled else 0,
        "sim": loaded.sim.enabled,
    }
    _emit(ctx, summary, "configuration ok: " + ", ".join(loaded.sources))


def main() -> None:
    cli(prog_name="ccbsctl")
