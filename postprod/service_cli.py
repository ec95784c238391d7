"""The service subcommands of ``postprod``: ``batch`` (an inbox now), ``serve`` (the nightly
schedule) and ``watch`` (an inbox as files arrive)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.service.batch import SUMMARY_NAME
from pipeline.errors import JobError
from pipeline.inputs import display_path
from pipeline.service.inbox import DEFAULT_CLIP_PRESETS, WatchSettings
from pipeline.model.presets import get_preset, load_presets
from postprod.server_cli import prefect_api

EXIT_SOME_FAILED = 1
stderr = Console(stderr=True)
stdout = Console()


def _print_summary(summary: dict) -> None:
    colours = {"succeeded": "green", "skipped": "cyan", "failed": "red"}
    table = Table("item", "job", "status", "QC", "outputs / reason", title=f"batch of {escape(summary['inbox'])}",
                  title_justify="left")
    for item in summary["items"]:
        detail = "\n".join(escape(path) for path in item["outputs"]) if item["status"] != "failed" else escape(
            item["reason"] or "")
        status = f"[{colours[item['status']]}]{item['status']}[/]"
        if item["set_aside_in"]:
            status += f"\nset aside in {escape(item['set_aside_in'])}"
        elif item["retry_next_run"]:
            status += "\nretried next run"
        name = display_path(Path(item["item"]).name)
        table.add_row(escape(name), item["job"] or "", status, item["qc"] or "", detail)
    stdout.print(table)


def _check_operator_options(args: argparse.Namespace) -> None:
    """Fail fast, before anything is moved or a server starts, on the operator's own mistakes.

    Raises:
        JobError: the inbox is not a folder, or ``--preset`` names an unknown preset.
    """
    if not args.inbox.is_dir():
        raise JobError(f"{args.inbox}: no such inbox folder")
    presets = load_presets()
    for name in args.preset or ():
        try:
            get_preset(name, presets)
        except JobError as error:
            raise JobError(f"--preset: {error}; nothing was moved") from None


def cmd_batch(args: argparse.Namespace) -> int:
    from flows.nightly_batch import nightly_batch

    _check_operator_options(args)
    with prefect_api():
        state = nightly_batch(
            inbox=args.inbox, out=args.out, concurrency=args.concurrency, clip_presets=args.preset,
            one_process=not args.separate_processes, dask=args.dask, dask_workers=args.dask_workers,
            return_state=True,
        )
    # The flow's own summary, not whatever an earlier run left in the folder.
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise summary
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
        stdout.print(f"summary: {args.out.resolve() / SUMMARY_NAME}")
    return EXIT_SOME_FAILED if summary["counts"]["failed"] else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deployments import nightly_deployment, serve_nightly
    from flows.server import configured_api_url, ensure_server, server_home

    _check_operator_options(args)
    deployment = nightly_deployment(
        args.inbox, args.out, cron=args.cron, timezone=args.timezone, concurrency=args.concurrency,
        clip_presets=args.preset, dask=args.dask,
    )
    url = configured_api_url()
    if url:
        stderr.print(f"serving on the configured Prefect server {url}")
        serve_nightly(deployment)
        return 0
    # Prefect's temporary server has no scheduler: always postprod's background server here.
    server, started = ensure_server(server_home(), port=args.port)
    stderr.print(f"{'started' if started else 'serving on'} the background Prefect server at {server.ui_url} "
                 f"(UI and API; it stays up after serve ends, `postprod server stop` stops it)")
    with temporary_settings({PREFECT_API_URL: server.url}):
        serve_nightly(deployment)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from flows.watch import watch

    _check_operator_options(args)
    stderr.print(f"watching {escape(str(args.inbox))}: a file counts as arrived after {args.settle:g} s unchanged; "
                 f"each batch's summary is {escape(str(args.out))}/batch-summary-<UTC time>.json")
    with prefect_api():
        watch(args.inbox, args.out, WatchSettings(settle_s=args.settle, poll_s=args.poll),
              concurrency=args.concurrency, clip_presets=args.preset)
    return 0


def add_service_commands(commands) -> None:
    """Add ``batch``, ``serve`` and ``watch`` to the ``postprod`` parser's subcommands."""

    def add_batch_options(sub: argparse.ArgumentParser, out_env: str | None = None, dask: bool = True) -> None:
        out_default = (os.environ.get(out_env) or None) if out_env else None
        sub.add_argument("--out", type=Path, required=out_default is None, default=out_default,
                         help="output root; each job writes into OUT/JOB/" + (f" (${out_env})" if out_env else ""))
        sub.add_argument("--concurrency", type=int,
                         help="jobs finished side by side (default: this machine's render slots, "
                              "$POSTPROD_RENDER_SLOTS or one per core and 4 GiB of memory)")
        sub.add_argument("--preset", action="append",
                         help=f"preset for loose clips, repeat for more (default {', '.join(DEFAULT_CLIP_PRESETS)}; "
                              "an inbox's _template.yaml wins)")
        if dask:
            sub.add_argument("--dask", metavar="local|ADDRESS",
                             help="render on a Dask cluster: 'local' for a local one, or a scheduler address")

    batch_parser = commands.add_parser("batch", help="finish every job file and loose clip in an inbox now")
    batch_parser.add_argument("inbox", type=Path)
    add_batch_options(batch_parser)
    batch_parser.add_argument("--dask-workers", type=int, default=2, help="workers of a local Dask cluster")
    batch_parser.add_argument("--separate-processes", action="store_true",
                              help="one ffmpeg per deliverable (they can run side by side, e.g. on Dask)")
    batch_parser.add_argument("--json", action="store_true", help="print the batch summary as JSON")
    batch_parser.set_defaults(handler=cmd_batch)

    serve_parser = commands.add_parser(
        "serve", help="run the nightly batch on a schedule (on $PREFECT_API_URL, else postprod's background server)")
    # An empty variable counts as unset (Path("") would be the current folder).
    inbox_default = os.environ.get("POSTPROD_INBOX") or None
    serve_parser.add_argument("--inbox", type=Path, default=inbox_default, required=inbox_default is None,
                              help="inbox ($POSTPROD_INBOX)")
    add_batch_options(serve_parser, out_env="POSTPROD_OUTBOX")
    serve_parser.add_argument("--cron", default="0 2 * * *", help="schedule (default '0 2 * * *', 02:00)")
    serve_parser.add_argument("--timezone", help="IANA time zone of the schedule ($POSTPROD_TIMEZONE, else UTC)")
    serve_parser.add_argument("--port", type=int,
                              help="port of the background server if serve starts it (default 4200 when free)")
    serve_parser.set_defaults(handler=cmd_serve)

    watch_parser = commands.add_parser("watch", help="finish each inbox item as soon as it has finished arriving")
    watch_parser.add_argument("inbox", type=Path)
    add_batch_options(watch_parser, dask=False)
    watch_parser.add_argument("--settle", type=float, default=10.0,
                              help="seconds a file must stay the same size before it counts as arrived (default 10)")
    watch_parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks (default 1)")
    watch_parser.set_defaults(handler=cmd_watch)
