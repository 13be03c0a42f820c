"""``ccbsctl``: the administrator's command line (click), a blocking client of ccbsd.

Root options: ``--json`` (one JSON document on stdout), ``--socket PATH``.
Exit codes follow sysexits: 0 ok, 1 failure, 2 usage, 69 daemon unavailable,
75 temporary failure, 77 permission denied, 78 configuration error.
"""

from __future__ import annotations

import click

from ccbs_isdn.cli_facility import facility

DEFAULT_SOCKET = "/run/ccbs-isdn/control.sock"


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
    """Show and manage Completion of Calls to Busy Subscriber requests."""
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json
    ctx.obj["socket"] = socket_path


cli.add_command(facility)


def main() -> None:
    cli(prog_name="ccbsctl")
