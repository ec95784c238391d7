"""Decodes and time of a job's source analyses: sync, smart reframing and a cut-down.

For each development clip, a job with the sync check, a ``smart`` 9:16 deliverable and a 4 s
cut-down of it is probed, analysed and checked for sync (in the job's order), then planned, with the analysis cache off. Every PyAV decode pass over the source is counted (``av.open``
wrapped: a container's ``decode`` that yields more than the one frame a probe looks at, per stream
kind, plus the passes of :mod:`pipeline.media.source_decode`), and the
analysis wall and CPU time is measured. A digest of what the analyses found (sync offset, cut times, subject samples, crop path,
the cut-down's pieces, sound onsets) shows whether two versions of the code agree.

Run from the project root: ``.venv/bin/python bench/analysis_pass.py [CLIP ...]``. The "before"
figures in ``bench/README.md`` came from earlier versions of this script run on earlier code.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np

DEVCLIPS = (Path(__file__).resolve().parents[1].parent / "shared" / "devclips").resolve()
CLIPS = ("ai_infinitetalk_compare_0.mp4", "speech_face_2.mp4", "real_vggsound_whale_shark.mp4")

_decodes: Counter[tuple[str, str]] = Counter()
_opens: Counter[str] = Counter()
_open = av.open


class _CountingContainer:
    """An ``av`` container whose ``decode`` passes are counted per stream kind."""

    def __init__(self, container, name: str):
        self._container, self._name = container, name

    def __getattr__(self, attribute):
        return getattr(self._container, attribute)

    def __enter__(self):
        self._container.__enter__()
        return self

    def __exit__(self, *exc):
        return self._container.__exit__(*exc)

    def decode(self, *streams, **kinds):
        chosen = [stream if isinstance(stream, str) else stream.type for stream in (*streams, *kinds)]
        return self._counted(self._container.decode(*streams, **kinds), chosen)

    def _counted(self, frames, kinds):
        """Count the pass once it goes past the first frame (a probe looks at one frame only)."""
        for number, frame in enumerate(frames):
            if number == 1:
                for kind in kinds:
                    _decodes[self._name, "picture" if kind == "video" else "sound"] += 1
            yield frame


def _counting_open(file, *args, **kwargs):
    container = _open(file, *args, **kwargs)
    _opens[Path(str(file)).name] += 1
    return _CountingContainer(container, Path(str(file)).name) if "r" in kwargs.get("mode", "r") else container


av.open = _counting_open

from pipeline.jobs.analyses import analyse_sources, check_sync  # noqa: E402
from pipeline.jobs.sequence import plan_with_analysis  # noqa: E402
from pipeline.jobs.steps import DirectSteps  # noqa: E402
from pipeline.plan.facts import JobFacts  # noqa: E402
from pipeline.analysis.cache import AnalysisCache  # noqa: E402
from pipeline.media.probe import probe  # noqa: E402
from pipeline.model.job import parse_job  # noqa: E402
from pipeline.model.presets import load_presets  # noqa: E402

from pipeline.media.source_decode import decode_tally, reset_decode_tally  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _digest(*values) -> str:
    digest = hashlib.sha256()
    for value in values:
        digest.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return digest.hexdigest()[:10]


def _decodes_of(clip: Path) -> tuple[int, int, int]:
    """(picture decodes, sound decodes, file opens) of ``clip`` since the last :func:`_reset`."""
    counts = Counter({kind: n for (name, kind), n in _decodes.items() if name == clip.name})
    tally = decode_tally().get(clip.resolve())
    if tally:
        counts["picture"] += tally.picture
        counts["sound"] += tally.sound
    return counts["picture"], counts["sound"], _opens[clip.name]


def _reset() -> None:
    _decodes.clear()
    _opens.clear()
    reset_decode_tally()


def measure(clip: Path, folder: Path) -> dict:
    job = parse_job({
        "version": 1, "name": "bench", "shots": [{"source": str(clip)}],
        "sync": {"policy": "report"},
        "deliverables": [{"preset": "tiktok-9x16", "cutdowns": [4],
                          "overrides": {"video": {"fit": "smart", "width": 180, "height": 320}}}],
    }, folder)
    presets = load_presets()
    media = {clip: probe(clip)}

    def analysed(cache: AnalysisCache):
        _reset()
        wall, cpu = time.perf_counter(), _cpu()
        found = analyse_sources(job, media, presets, cache.get_or_compute, sync=True)
        reports, _ = check_sync(job, media, cache.get_or_compute, found.sync_facts)
        plan = plan_with_analysis(job, JobFacts(media, reframe=found.reframe, sound_activity=found.sound_activity),
                                  presets, folder / "out", DirectSteps(cache), measure_loudness=False)
        whole = (time.perf_counter() - wall, _cpu() - cpu, *_decodes_of(clip))
        return reports, found.reframe, plan, whole

    reports, analyses, plan, whole = analysed(AnalysisCache(None))
    cache = AnalysisCache(folder / f"cache-{clip.stem}")
    analysed(cache)
    *_, cached = analysed(AnalysisCache(folder / f"cache-{clip.stem}"))
    analysis = analyses[clip]
    from pipeline.analysis.reframe import camera_path

    crop = camera_path(analysis, 9 / 16)
    cut = next(render for render in plan.renders if "4s" in render.outputs[0].deliverable)
    report = reports.get(clip)
    return {
        "clip": clip.name, "whole": whole, "rerun": cached[2:4],
        "offset_ms": report.offset_ms if report else None,
        "method": report.method if report else None,
        "cuts": analysis.cut_times_s,
        "subjects": _digest(analysis.sample_times_s, analysis.subject_boxes, analysis.subject_importance,
                            analysis.activity, analysis.active),
        "crop": _digest(*(np.array(shot.centres) for shot in crop.shots)),
        "cutdown": _digest(cut.args[cut.args.index("-filter_complex") + 1]),
    }


def main() -> None:
    names = sys.argv[1:] or CLIPS
    print("decodes: picture/sound (file opens); times: wall/CPU seconds; rerun: a second job with the cache")
    print(f"{'clip':30s} {'job decodes':>11s} {'job s':>11s} {'rerun':>5s} {'offset':>6s} {'method':>17s} "
          f"{'cuts':>10s} {'subjects':>10s} {'crop':>10s} {'cut-down':>10s}")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            row = measure(DEVCLIPS / name, Path(scratch))
            cuts = ",".join(f"{cut:.2f}" for cut in row["cuts"]) or "-"
            whole = row["whole"]
            print(f"{row['clip']:30s} {f'{whole[2]}/{whole[3]} ({whole[4]})':>11s} {whole[0]:5.2f}/{whole[1]:5.2f} "
                  f"{'{}/{}'.format(*row['rerun']):>5s} {str(row['offset_ms']):>6s} {str(row['method']):>17s} "
                  f"{cuts:>10s} {row['subjects']:>10s} {row['crop']:>10s} {row['cutdown']:>10s}")

if __name__ == "__main__":
    main()
