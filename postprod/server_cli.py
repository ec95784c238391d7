"""``postprod server start|status|stop``: the Prefect server postprod keeps running in the background
(:mod:`flows.server`), and the one place commands get their Prefect API from."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

stderr = Console(stderr=True)
stdout = Console()


@contextmanager
def prefect_api() -> Iterator[str | None]:
    """The command's Prefect API (:func:`flows.server.command_api`), saying so when it starts a server."""
    from flows.server import command_api

    def started(server) -> None:
        stderr.print(f"started a Prefect server in the background at {server.ui_url} (pid {server.pid}, state in "
                     f"{escape(str(server.home))}); later commands reuse it, `postprod server stop` stops it",
                     highlight=False)

    with command_api(on_start=started) as url:
        yield url


def cmd_server(args: argparse.Namespace) -> int:
    from flows.server import configured_api_url, ensure_server, running_server, server_home, stop_server

    home = server_home()
    if args.action == "start":
        server, started = ensure_server(home, port=args.port)
        stdout.print(f"{'started' if started else 'already running'}: {server.ui_url} (pid {server.pid})",
                     highlight=False)
    elif args.action == "stop":
        server = stop_server(home)
        stdout.print(f"stopped the server at {server.ui_url} (pid {server.pid})" if server
                     else f"no server running from {escape(str(home))}", highlight=False)
    else:
        server = running_server(home)
        document = {"home": str(home), "running": server is not None, "configured_api_url": configured_api_url(),
                    **({"server": server.to_dict()} if server else {})}
        if args.json:
            print(json.dumps(document, indent=2))
        elif server:
            stdout.print(f"running: {server.ui_url} (pid {server.pid}), state in {escape(str(home))}", highlight=False)
        else:
            stdout.print(f"not running (state in {escape(str(home))})", highlight=False)
        if document["configured_api_url"] and not args.json:
            stdout.print(f"commands report to PREFECT_API_URL={escape(document['configured_api_url'])}",
                         highlight=False)
    return 0


def add_server_command(commands) -> None:
    """Add ``server`` to the ``postprod`` parser's subcommands."""
    parser = commands.add_parser(
        "server", help="the Prefect server postprod starts in the background on first use: start, status, stop")
    parser.add_argument("action", choices=["start", "status", "stop"],
                        help="start it now (commands do on first use), say where it runs, or stop it")
    parser.add_argument("--port", type=int, help="port for a server started now (default 4200 when free)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.set_defaults(handler=cmd_server)
