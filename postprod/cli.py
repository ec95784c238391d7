"""``postprod``: probe, list presets, finish clips, run job files and previews, render one frame,
run the demo, check and fix sync, find stutter, QC any file, reframe a clip, and run the service
(``batch``, ``serve``, ``watch``; see ``postprod/service_cli.py``) and the background Prefect server
(``server``; see ``postprod/server_cli.py``).

Exit codes (docs/cli.md): 0 ok, 1 a batch with failed items, 2 bad usage, job file or preset,
3 unreadable or unsupported media, 4 render or verification failure or a failed QC check,
130 / 143 stopped by SIGINT / SIGTERM (see ``postprod/interrupts.py``), 141 the reader of standard
output went away (``| head``).

Each command imports the library modules it runs (the job path pulls in PyAV, OpenCV and SciPy),
so that ``postprod server status`` or ``postprod presets`` start in a fraction of that time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

import pipeline
from pipeline.errors import PostprodError
from pipeline.model.job import Deliverable, job_for_clips, job_name_for_clip, load_job, Job
from pipeline.model.presets import get_preset, load_presets
from pipeline.media.probe import probe
from pipeline.model.timebase import format_rate
from pipeline.inputs import display_path
from postprod import interrupts
from postprod.console_logs import hide_expected_tracebacks
from postprod.fast_exit import exit_now
from postprod.reframe_cli import add_reframe_command
from postprod.server_cli import add_server_command, prefect_api
from postprod.service_cli import add_service_commands

EXIT_OK = 0
EXIT_OUT_OF_SYNC = 4
"""``postprod sync --check``: a clip's sound is out of sync (the exit code of a failed QC)."""
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a program killed by writing to a closed pipe."""
REVIEW_PRESET = "review-540p"
PROGRESS_LABEL_CHARS = 48
stderr = Console(stderr=True)
stdout = Console()


def _print_json(data) -> None:
    print(json.dumps(data, indent=2))


def cmd_probe(args: argparse.Namespace) -> int:
    from pipeline.media.content_credentials import read_credentials

    infos = [probe(path) for path in args.files]
    credentials = [read_credentials(info.path) for info in infos]
    if args.json:
        facts = [{**info.to_dict(), "credentials": found.to_dict() if found else None}
                 for info, found in zip(infos, credentials, strict=True)]
        _print_json(facts if len(facts) > 1 else facts[0])
        return EXIT_OK
    for info, found in zip(infos, credentials, strict=True):
        video, audio = info.video, info.audio
        table = Table(title=str(info.path), show_header=False, title_justify="left")
        table.add_row("container", f"{info.container} ({(info.brand or '').strip() or 'no brand'})")
        table.add_row("duration", f"{float(info.duration_s):.3f} s")
        table.add_row(
            "video",
            f"{video.codec} {video.profile or ''} {video.codec_tag}, {video.pix_fmt} ({video.bit_depth}-bit)",
        )
        table.add_row(
            "size",
            f"coded {video.coded_width}x{video.coded_height}, displayed {video.display_width}x"
            f"{video.display_height} (rotation {video.rotation}°), SAR {video.sample_aspect_ratio}, "
            f"DAR {video.display_aspect_ratio}",
        )
        rate_kind = "variable, mean" if video.variable_frame_rate else "constant"
        table.add_row(
            "frames",
            f"{video.frame_count} at {format_rate(video.frame_rate)} fps ({rate_kind}; "
            f"{float(video.frame_rate):.3f}), starts {float(video.start_time_s):.3f} s",
        )
        table.add_row(
            "colour",
            f"primaries {video.color_primaries}, transfer {video.color_transfer}, "
            f"matrix {video.color_matrix}, range {video.color_range}",
        )
        if audio:
            table.add_row(
                "audio",
                f"{audio.codec} {audio.profile or ''}, {audio.sample_rate} Hz, {audio.channels} ch "
                f"({audio.layout}), starts {float(audio.start_time_s):.3f} s",
            )
        else:
            table.add_row("audio", "none")
        table.add_row("credentials", _credentials_summary(found))
        stdout.print(table)
    return EXIT_OK


def _credentials_summary(found) -> str:
    """One line on a file's C2PA manifest for the probe table."""
    if found is None:
        return "none (no C2PA manifest)"
    generated = ", AI-generated" if found.ai_generated else ""
    return (f"C2PA {found.validation_state}{generated}: by {found.claim_generator or 'unknown tool'}, "
            f"signed by {found.signer or 'unknown'}; actions {', '.join(found.actions) or 'none'}")


def cmd_presets(args: argparse.Namespace) -> int:
    presets = load_presets()
    if args.json:
        _print_json({name: preset.model_dump(mode="json") for name, preset in presets.items()})
        return EXIT_OK
    stdout.print(presets_table(presets))
    return EXIT_OK


def presets_table(presets: dict) -> Table:
    """One line per preset, narrow enough for an 80-column terminal (``--json`` has every field)."""
    table = Table("preset", "video", "picture", "fps", "audio", box=None, pad_edge=False, header_style="bold")
    for column in table.columns:
        column.no_wrap = column.header != "video"
    for name, preset in presets.items():
        video, audio = preset.video, preset.audio
        picture = f"{video.width}x{video.height} {video.fit}" if video.width else "source"
        audio_text = audio.codec + ("" if audio.sample_rate == 48000 else f" {audio.sample_rate / 1000:g}k")
        audio_text += "" if audio.layout == "stereo" else f" {audio.layout}"
        audio_text += "" if audio.tracks == "stereo" else f" {audio.tracks}"
        table.add_row(
            name,
            f"{video.codec} {video.profile or ''}".strip(),
            picture,
            (f"{float(video.frame_rate):.4g}" if video.frame_rate else "source")
            + ("i" if video.field_order == "tff" else ""),
            audio_text,
        )
    return table


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[Callable | None]:
    """Rich progress bars fed by ffmpeg's ``-progress`` reports, one per ffmpeg invocation."""
    if not enabled:
        yield None
        return
    bars: dict[int, int] = {}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    ) as progress:

        def update(render_plan, report) -> None:
            key = id(render_plan)
            if key not in bars:
                labels = render_plan.title
                if len(labels) > PROGRESS_LABEL_CHARS:
                    labels = labels[: PROGRESS_LABEL_CHARS - 1] + "…"
                bars[key] = progress.add_task(labels, total=max(report.total_s, 1e-6))
            progress.update(bars[key], completed=report.done_s)

        yield update


def _run_jobs(jobs, out_dir: Path | None, args: argparse.Namespace) -> int:
    """Run jobs through the Prefect flow (or, with ``--no-prefect``, the same steps without it),
    with progress bars; print the manifests."""
    from pipeline.jobs.finish import finish, preflight

    if not args.no_prefect:
        from flows.finish_job import finish_job, progress_listener

    for job in jobs:
        # Bad media and job errors fail here in seconds, before a Prefect server starts.
        preflight(job, out_dir)
    manifests = []
    one_process = not args.separate_processes
    with _progress_bars(enabled=not args.json) as listener:
        if args.no_prefect:
            manifests = [finish(job, out_dir, one_process=one_process, on_progress=listener) for job in jobs]
        else:
            token = progress_listener.set(listener)
            try:
                with prefect_api():
                    manifests = [finish_job(job=job, out_dir=out_dir, one_process=one_process) for job in jobs]
            finally:
                progress_listener.reset(token)
    documents = [json.loads(Path(path).read_text()) for path in manifests]
    if args.json:
        _print_json(documents if len(documents) > 1 else documents[0])
    else:
        for manifest_file, document in zip(manifests, documents, strict=True):
            for output in document["outputs"]:
                stdout.print(f"[green]verified[/] {output['path']}")
            for export in document["editorial_skipped"]:
                stderr.print(f"[yellow]skipped[/] {escape(export['path'])}: {escape(export['reason'])}",
                             highlight=False)
            stdout.print(f"manifest: {manifest_file}")
    return EXIT_OK


def _admitted_job(job_file: Path, args: argparse.Namespace) -> Job:
    """The job file's job, once everything it reads and runs is allowed (:mod:`pipeline.plan.admission`)."""
    from pipeline.plan.admission import JobAccess, check_job_access

    job = load_job(job_file)
    access = JobAccess.for_job_file(job_file, args.allow_read, args.allow_graphics)
    check_job_access(job, access, load_presets(), origin=display_path(job_file))
    return job


def cmd_finish(args: argparse.Namespace) -> int:
    from pipeline.plan.admission import JobAccess, check_job_access

    presets = load_presets()
    for name in args.preset:
        get_preset(name, presets)
    jobs = [job_for_clips([Path(source)], args.preset, name=job_name_for_clip(Path(source))) for source in args.inputs]
    for source, job in zip(args.inputs, jobs, strict=True):
        # The clips named on the command line are what the user asked to read.
        check_job_access(job, JobAccess.configured([job.shots[0].source.parent]), presets,
                         origin=display_path(source))
    return _run_jobs(jobs, args.out, args)


def cmd_run(args: argparse.Namespace) -> int:
    return _run_jobs([_admitted_job(args.job, args)], args.out, args)


def cmd_preview(args: argparse.Namespace) -> int:
    job = _admitted_job(args.job, args)
    review = job.model_copy(update={"deliverables": [Deliverable(preset=REVIEW_PRESET, name="review")]})
    return _run_jobs([review], args.out, args)


def cmd_frame(args: argparse.Namespace) -> int:
    from pipeline.jobs.still import render_still

    path = render_still(_admitted_job(args.job, args), args.deliverable, args.at, args.out)
    stdout.print(f"wrote {escape(str(path))}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.jobs.demo import write_demo_job

    job_file = write_demo_job(args.out / "demo-clips", stderr)
    stderr.print(f"demo job: {job_file}")
    return _run_jobs([_admitted_job(job_file, args)], args.out, args)


def cmd_qc(args: argparse.Namespace) -> int:
    from pipeline.errors import QcFailedError
    from pipeline.qc.checks import run_qc
    from pipeline.qc.html_report import write_html

    preset = get_preset(args.preset)
    info = probe(args.file)
    sync = None
    if args.sync:
        from pipeline.analysis.sync import measure_sync

        sync = measure_sync(args.file, info)
    report = run_qc(args.file, preset, sync=sync, policy=args.policy, info=info)
    if args.html:
        write_html(args.file.name, [report], args.html)
    if args.json:
        _print_json(report.to_dict())
    else:
        colours = {"pass": "green", "warn": "yellow", "fail": "red"}
        table = Table("check", "status", "value", "faults (timecode)", "found",
                      title=f"{escape(str(args.file))}: {report.status} (policy {report.policy})",
                      title_justify="left")
        document = report.to_dict()
        for check in document["checks"]:
            faults = ", ".join(f"{fault['start_tc']}-{fault['end_tc']}" for fault in check["faults"][:6])
            value = "" if check["value"] is None else f"{check['value']} {check['unit']}"
            table.add_row(check["name"], f"[{colours[check['status']]}]{check['status']}[/]", escape(value),
                          faults, escape(check["detail"]))
        stdout.print(table)
        if args.html:
            stdout.print(f"HTML report: {args.html}")
    if report.status == "fail":
        raise QcFailedError(f"{args.file}: QC failed ({report.summary()}; policy {report.policy})")
    return EXIT_OK


def cmd_stutter(args: argparse.Namespace) -> int:
    from pipeline.prestage.stutter import detect_stutter

    documents = [detect_stutter(path, probe(path)).to_dict() for path in args.files]
    if args.json:
        _print_json(documents)
        return 0
    for document in documents:
        shown = ", ".join(str(index) for index in document["repeats"][:20])
        more = " ..." if len(document["repeats"]) > 20 else ""
        print(f"{document['path']}: {len(document['repeats'])} of {document['frame_count']} frames repeat "
              f"their predecessor ({100 * document['repeat_share']:.1f} %){': ' + shown + more if shown else ''}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from pipeline.analysis.sync import STANDARDS, measure_sync

    standard = STANDARDS[args.standard]
    fix_targets = _sync_fix_targets(args.files, args.fix) if args.fix else {}
    documents = []
    for path in args.files:
        report = measure_sync(path, standard=standard)
        document = report.to_dict()
        if args.fix:
            document["fixed"] = _fix_sync_offset(report, fix_targets[path])
        documents.append(document)
    if args.json:
        _print_json(documents if len(documents) > 1 else documents[0])
    else:
        for document in documents:
            _print_sync_table(document)
    if args.check and any(document["verdict"] == "out_of_sync" for document in documents):
        return EXIT_OUT_OF_SYNC
    return EXIT_OK


def _sync_fix_targets(files: list[Path], out: Path) -> dict[Path, Path]:
    """Where each input's fixed copy goes: ``out`` itself for one input, else ``out/NAME``."""
    from pipeline.errors import JobError

    if len(files) == 1 and not out.is_dir():
        return {files[0]: out}
    if out.exists() and not out.is_dir():
        raise JobError(f"--fix {out}: several inputs need a folder, and this is a file")
    targets = {path: out / path.name for path in files}
    if len(set(targets.values())) < len(targets):
        raise JobError(f"--fix {out}: two inputs share a file name; fix them into separate folders")
    return targets


def _fix_sync_offset(report, target: Path) -> dict:
    """Shift the sound of ``report.path`` into ``target`` and re-measure the copy."""
    from pipeline.analysis.sync import fix_report, measure_sync

    if report.offset_ms is None:
        return {"path": None, "reason": f"not fixed: the offset is undetermined ({report.reason})"}
    fixed = fix_report(report, target)
    remeasured = measure_sync(fixed, standard=report.standard)
    return {"path": str(fixed), "offset_ms": remeasured.offset_ms, "verdict": remeasured.verdict}


def _print_sync_table(document: dict) -> None:
    colours = {"in_sync": "green", "out_of_sync": "red", "undetermined": "yellow"}
    table = Table(title=escape(document["path"]), show_header=False, title_justify="left")
    standard = document["standard"]
    verdict = document["verdict"]
    table.add_row("verdict", f"[{colours[verdict]}]{verdict}[/] ({escape(standard['title'])}: sound may "
                  f"lead by {standard['max_lead_ms']} ms, lag by {standard['max_lag_ms']} ms)")
    if document["offset_ms"] is None:
        table.add_row("offset", escape(document["reason"]))
    else:
        offset = document["offset_ms"]
        lateness = "late" if offset > 0 else "early" if offset < 0 else "on time"
        table.add_row("offset", f"{offset:+d} ms (sound {lateness}), confidence {document['confidence']:.2f}")
        table.add_row("method", f"{document['method']}: {escape(document['evidence'])}")
    if document["drift_ms_per_min"] is not None:
        table.add_row("drift", f"{document['drift_ms_per_min']:+.1f} ms per minute")
    for note in document["container"]["notes"]:
        table.add_row("container", escape(note))
    fixed = document.get("fixed")
    if fixed is not None:
        if fixed["path"] is None:
            table.add_row("fixed", escape(fixed["reason"]))
        else:
            remeasured = f"re-measured {fixed['offset_ms']} ms, {fixed['verdict']}"
            table.add_row("fixed", f"{escape(fixed['path'])}: {remeasured}")
    stdout.print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postprod", description="Finish generated video clips into verified deliverables."
    )
    parser.add_argument("--version", action="version", version=f"postprod {pipeline.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks of expected failures too (bad media, QC, verification)")
    commands = parser.add_subparsers(dest="command", required=True)

    probe_parser = commands.add_parser("probe", help="show what a media file holds")
    probe_parser.add_argument("files", nargs="+", type=Path)
    probe_parser.add_argument("--json", action="store_true", help="print JSON")
    probe_parser.set_defaults(handler=cmd_probe)

    presets_parser = commands.add_parser("presets", help="list deliverable presets")
    presets_parser.add_argument("--json", action="store_true", help="print JSON")
    presets_parser.set_defaults(handler=cmd_presets)

    def add_access_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--allow-read", action="append", type=Path, default=[], metavar="DIR",
                         help="a folder outside the job file's own whose files the job may read; repeat for more")
        sub.add_argument("--allow-graphics", action="append", default=[], metavar="MODULE",
                         help="a Python module (or package) graphics overlays may call; repeat for more")

    def add_render_options(sub: argparse.ArgumentParser, out_required: bool) -> None:
        add_access_options(sub)
        sub.add_argument("--out", type=Path, required=out_required, help="output folder")
        sub.add_argument("--json", action="store_true", help="print the manifest(s) as JSON")
        sub.add_argument(
            "--separate-processes",
            action="store_true",
            help="one ffmpeg per deliverable instead of one per job (less memory, decodes again)",
        )
        sub.add_argument(
            "--no-prefect",
            action="store_true",
            help="run the job's steps in this process without Prefect (no server, no flow run in a UI)",
        )

    finish_parser = commands.add_parser("finish", help="finish clips into presets, one job per clip")
    finish_parser.add_argument("inputs", nargs="+", type=Path)
    finish_parser.add_argument("--preset", action="append", required=True, help="repeat for more")
    add_render_options(finish_parser, out_required=True)
    finish_parser.set_defaults(handler=cmd_finish)

    run_parser = commands.add_parser("run", help="run a job file")
    run_parser.add_argument("job", type=Path)
    add_render_options(run_parser, out_required=False)
    run_parser.set_defaults(handler=cmd_run)

    preview_parser = commands.add_parser(
        "preview", help=f"a fast low-resolution review copy of a job ({REVIEW_PRESET}, timecode burnt in)"
    )
    preview_parser.add_argument("job", type=Path)
    add_render_options(preview_parser, out_required=False)
    preview_parser.set_defaults(handler=cmd_preview)

    frame_parser = commands.add_parser(
        "frame", help="one frame of a deliverable, overlays included, as a PNG (nothing else is rendered)"
    )
    frame_parser.add_argument("job", type=Path)
    frame_parser.add_argument("--deliverable", required=True, help="deliverable name (or preset name)")
    frame_parser.add_argument("--at", required=True, help="time: seconds, frames (36f) or timecode")
    frame_parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    add_access_options(frame_parser)
    frame_parser.set_defaults(handler=cmd_frame)

    demo_parser = commands.add_parser("demo", help="synthesise generator-shaped clips and finish them")
    add_render_options(demo_parser, out_required=True)
    demo_parser.set_defaults(handler=cmd_demo)

    sync_parser = commands.add_parser(
        "sync", help="measure sound against picture, judge it against a standard, optionally fix it"
    )
    sync_parser.add_argument("files", nargs="+", type=Path)
    sync_parser.add_argument("--json", action="store_true", help="print JSON (offset_ms > 0: sound late)")
    sync_parser.add_argument(
        "--standard", choices=["ebu-r37", "itu-bt1359", "atsc-is191"], default="ebu-r37",
        help="limits to judge against (default: ebu-r37, sound may lead 40 ms, lag 60 ms)",
    )
    sync_parser.add_argument(
        "--fix", type=Path, metavar="OUT",
        help="write a copy with the sound shifted into place (video copied as is): a file for one input, "
             "a folder for several",
    )
    sync_parser.add_argument(
        "--check", action="store_true",
        help=f"exit {EXIT_OUT_OF_SYNC} when any clip is out_of_sync (undetermined clips do not fail)",
    )
    sync_parser.set_defaults(handler=cmd_sync)

    stutter_parser = commands.add_parser(
        "stutter", help="find frames that repeat their predecessor while the picture moves (enhance: destutter)"
    )
    stutter_parser.add_argument("files", nargs="+", type=Path)
    stutter_parser.add_argument("--json", action="store_true", help="print JSON")
    stutter_parser.set_defaults(handler=cmd_stutter)

    qc_parser = commands.add_parser(
        "qc", help="check a file against a preset: conformance, loudness, black, freeze, silence, levels, "
                   "stutter, flash; exit 4 when a check fails"
    )
    qc_parser.add_argument("file", type=Path)
    qc_parser.add_argument("--preset", required=True, help="preset the file should meet")
    qc_parser.add_argument("--json", action="store_true", help="print the JSON report")
    qc_parser.add_argument("--html", type=Path, metavar="OUT", help="write the HTML report here")
    qc_parser.add_argument("--policy", choices=["fail", "warn"],
                           help="override the preset's QC policy (the report's passed field; the exit code is "
                                "4 on a failed check either way)")
    qc_parser.add_argument("--sync", action="store_true",
                           help="also measure sound against picture (a second, slower decode)")
    qc_parser.set_defaults(handler=cmd_qc)
    add_service_commands(commands)  # batch, serve, watch
    add_server_command(commands)
    add_reframe_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line; run as a program (``argv`` None), SIGINT and SIGTERM stop it cleanly and
    the process ends as soon as the command is done (:func:`postprod.fast_exit.exit_now`)."""
    args = build_parser().parse_args(argv)
    if argv is None:
        interrupts.install()
        exit_now(_run_command(args))
    return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code, expected failures reported as one line."""
    if not args.debug:
        hide_expected_tracebacks()
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit-time flush
        return code
    except BrokenPipeError:
        # The reader went away (`postprod probe --json | head -1`): stop quietly, and point standard
        # output at /dev/null so that Python's own flush at exit does not report the pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except BaseException as error:
        interrupts.wait_if_stopping()  # a signal's handler is cleaning up; it ends the process
        if not isinstance(error, PostprodError):
            raise
        if args.debug:
            traceback.print_exc()
        stderr.print(f"[bold red]postprod: error:[/] {escape(str(error))}", highlight=False)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
