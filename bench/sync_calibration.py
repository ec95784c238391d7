"""Sync on real talking clips: each development clip with its sound shifted by known amounts, and
its pictures with every other clip's speech.

Truth: the clips are taken as in sync as published (their makers show them as lip-sync results),
so a clip whose sound is moved ``s`` ms later should measure ``+s`` ms. Each shifted copy is made
by ``pipeline.analysis.sync_fix.fix_sync`` (picture copied bit for bit, sound shifted sample-accurately and
re-encoded), so the sound path is measured end to end; the picture, identical in every copy, is
analysed once per clip (event signals and mouth tracks) and the full decision chain of
``measure_sync`` (``pipeline.analysis.sync.content_offset``: event pairs, event correlation, lips) runs on
each copy's sound. Mismatched pairs give clip A's pictures clip B's speech, moved in time by each of
the shifts as well (the sound analyses' start times moved, which is what shifting the file does to
them), and so do sounds of clips without talking faces (:data:`OTHER_SOUNDS`): any determined
answer there is a false determination.

Besides the error against the shift, each answer's tracking error is given: the estimate less the
clip's own unshifted lip lag less the shift, which says how well the estimate follows a change of
sync whatever the clip's own offset as published.

The clips are split into a tuning set (looked at while choosing the lip-sync thresholds) and a
held-out validation set; the summary reports both, and the lip answers there would be at other
thresholds of the lip match's z-score (operating points: answered, within one and two frames of the
shift, mismatched pairs answered), the guards (search edge, share of frames with sound) kept.

Run from the repository root (needs ../shared/devclips/)::

    python bench/sync_calibration.py --json calibration.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.analysis.lipsync import MIN_CONFIDENCE, MIN_HEARD_SHARE, LipMatch, mouth_tracks, speech_activity
from pipeline.analysis.onsets import picture_events, sound_onsets
from pipeline.media.probe import probe
from pipeline.analysis.sync import EBU_R37, content_offset, fix_sync, lip_evidence

DEVCLIPS = Path("../shared/devclips")
TUNING = ("ai_infinitetalk_speech_a", "ai_infinitetalk_dubbing_a", "ai_infinitetalk_i2v_8",
          "ai_latentsync_compare_1", "speech_face_2", "face_driving_d6")
VALIDATION = ("ai_infinitetalk_speech_b", "ai_infinitetalk_dubbing_b", "ai_infinitetalk_compare_0",
              "speech_latentsync_demo2_portrait_hevc", "speech_face_5", "face_driving_d10")
OTHER_SOUNDS = ("real_vggsound_whale_shark.mp4", "mp3_in_mp4_outdoor.mp4", "vp9_alpha.webm")
"""Clips without talking faces whose sounds (under water, outdoors, a short test clip) are paired
with every talking clip's pictures too: a lip answer there is a false determination."""
SHIFTS_MS = (-300, -200, -120, -40, 0, 40, 120, 200, 300)
ONE_FRAME_MS = 40
"""The accuracy target: one frame at 25 fps."""
OPERATING_POINTS = (3.0, 3.3, 3.5, 3.8, 4.0, 4.5, 5.0)
"""Lip z-score thresholds the operating-point table is computed at."""


@dataclass(frozen=True)
class Row:
    clip: str
    split: str
    shift_ms: int
    offset_ms: int | None
    method: str | None
    confidence: float | None
    verdict: str
    reason: str | None
    lip_offset_ms: int | None
    lip_correlation: float | None
    lip_confidence: float | None
    lip_guarded: bool
    """The lip match is refused whatever its z-score (at the search edge, or too few frames meet the
    sound), or there is none."""

    @property
    def error_ms(self) -> int | None:
        return None if self.offset_ms is None else self.offset_ms - self.shift_ms


def measure_clip(clip: str, scratch: Path) -> tuple[list[Row], tuple]:
    """Every shift of one clip, and its unshifted analyses for the mismatched pairs."""
    path = DEVCLIPS / f"{clip}.mp4"
    info = probe(path)
    picture = picture_events(path)
    mouths = mouth_tracks(path, info.video.rotation % 360)
    rows = []
    for shift in SHIFTS_MS:
        shifted = path if shift == 0 else fix_sync(path, -shift, scratch / f"{clip}{shift:+d}.mp4", info)
        sound, speech = sound_onsets(shifted), speech_activity(shifted)
        found = content_offset(picture, sound, lambda: lip_evidence(mouths, speech))
        verdict = "undetermined" if found.offset_ms is None else EBU_R37.judge(found.offset_ms)
        lips = found.lips
        rows.append(Row(clip, "tuning" if clip in TUNING else "validation", shift, found.offset_ms,
                        found.method, found.confidence, verdict, found.reason,
                        lips.offset_ms if lips else None, lips.correlation if lips else None,
                        lips.confidence if lips else None, guarded(lips)))
        print(clip, shift, found.offset_ms, found.method, flush=True)
        if shifted != path:
            shifted.unlink()
    return rows, (picture, mouths, sound_onsets(path), speech_activity(path))


def guarded(lips: LipMatch | None) -> bool:
    """Whether a lip match is refused whatever its z-score."""
    return lips is None or lips.at_search_edge or lips.heard_share < MIN_HEARD_SHARE


def operating_points(rows: list[Row], mismatched: list[dict]) -> list[dict]:
    """Lip answers at each z threshold of :data:`OPERATING_POINTS`, by set: talking cases answered
    and their errors against the shift, mismatched pairs answered."""
    points = []
    for threshold in OPERATING_POINTS:
        point = {"min_confidence": threshold}
        for split in ("tuning", "validation"):
            cases = [row for row in rows if row.split == split]
            errors = [abs(row.lip_offset_ms - row.shift_ms) for row in cases
                      if not row.lip_guarded and row.lip_confidence >= threshold]
            pairs = [pair for pair in mismatched if pair["split"] == split]
            point[split] = {
                "answered": len(errors), "cases": len(cases),
                "within_one_frame": sum(error <= ONE_FRAME_MS for error in errors),
                "within_two_frames": sum(error <= 2 * ONE_FRAME_MS for error in errors),
                "mismatched_answered": sum(not pair["lip_guarded"] and pair["lip_confidence"] >= threshold
                                           for pair in pairs),
                "mismatched_pairs": len(pairs),
            }
        points.append(point)
    return points


def mismatched_pair(picture_clip: str, pictures: tuple, sound_name: str, sounds: tuple, shift_ms: int) -> dict:
    """The decision chain on one clip's pictures with another clip's sound moved by ``shift_ms``
    (its analyses' start times moved, which is what shifting the file does to them)."""
    picture, mouths, _, _ = pictures
    sound, speech = sounds
    sound = dataclasses.replace(sound, start_s=sound.start_s + shift_ms / 1000)
    speech = speech and dataclasses.replace(speech, start_s=speech.start_s + shift_ms / 1000)
    found = content_offset(picture, sound, lambda: lip_evidence(mouths, speech))
    return {"pictures": picture_clip, "sound": sound_name, "shift_ms": shift_ms,
            "split": "tuning" if picture_clip in TUNING else "validation",
            "offset_ms": found.offset_ms, "method": found.method, "confidence": found.confidence,
            "lip_correlation": found.lips.correlation if found.lips else None,
            "lip_confidence": found.lips.confidence if found.lips else None,
            "lip_offset_ms": found.lips.offset_ms if found.lips else None,
            "lip_guarded": guarded(found.lips)}


def answered_pairs(pairs: list[dict]) -> dict:
    """Pairs and determined answers among them, by the set of the pictures."""
    return {split: {"pairs": sum(pair["split"] == split for pair in pairs),
                    "determined": sum(pair["split"] == split and pair["offset_ms"] is not None for pair in pairs),
                    "largest_lip_confidence": max((pair["lip_confidence"] for pair in pairs
                                                   if pair["split"] == split and not pair["lip_guarded"]),
                                                  default=None)}
            for split in ("tuning", "validation")}


def tracking_error_ms(row: Row, rows: list[Row]) -> int | None:
    """A lip answer less its clip's unshifted lip lag less the shift; None for other answers."""
    unshifted = next(other for other in rows if other.clip == row.clip and other.shift_ms == 0)
    if row.method != "lip_sync" or unshifted.lip_offset_ms is None:
        return None
    return row.offset_ms - unshifted.lip_offset_ms - row.shift_ms


def summary(rows: list[Row]) -> dict:
    determined = [row for row in rows if row.offset_ms is not None]
    errors = [abs(row.error_ms) for row in determined]
    tracking = [abs(error) for row in determined if (error := tracking_error_ms(row, rows)) is not None]
    return {
        "cases": len(rows),
        "determined": len(determined),
        "determined_share": round(len(determined) / len(rows), 3) if rows else None,
        "within_one_frame": sum(error <= ONE_FRAME_MS for error in errors),
        "beyond_two_frames": sum(error > 2 * ONE_FRAME_MS for error in errors),
        "largest_error_ms": max(errors, default=None),
        "largest_tracking_error_ms": max(tracking, default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every row and the summary here")
    parser.add_argument("--cores", type=int, default=2, help="CPUs to pin the process to (default 2)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    console = Console(width=180)
    rows: list[Row] = []
    analyses = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for clip in (*TUNING, *VALIDATION):
            clip_rows, analyses[clip] = measure_clip(clip, Path(scratch))
            rows += clip_rows
    mismatched = [mismatched_pair(picture_clip, analyses[picture_clip], sound_clip, analyses[sound_clip][2:], shift)
                  for (picture_clip, sound_clip), shift
                  in itertools.product(itertools.permutations(analyses, 2), SHIFTS_MS)]
    other_sounds = {name: (sound_onsets(DEVCLIPS / name), speech_activity(DEVCLIPS / name)) for name in OTHER_SOUNDS}
    other_pairs = [mismatched_pair(picture_clip, analyses[picture_clip], name, other_sounds[name], shift)
                   for picture_clip, name, shift in itertools.product(analyses, OTHER_SOUNDS, SHIFTS_MS)]

    table = Table(title="Talking clips, sound shifted by a known amount (truth: +shift)")
    for column in ("clip", "set", "shift ms", "estimate ms", "error ms", "method", "confidence", "verdict",
                   "lip lag ms", "lip corr", "lip z", "lip guard"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.clip, row.split, f"{row.shift_ms:+d}",
                      "-" if row.offset_ms is None else f"{row.offset_ms:+d}",
                      "-" if row.error_ms is None else f"{row.error_ms:+d}", row.method or "-",
                      "-" if row.confidence is None else f"{row.confidence:.2f}", row.verdict,
                      "-" if row.lip_offset_ms is None else f"{row.lip_offset_ms:+d}",
                      "-" if row.lip_correlation is None else f"{row.lip_correlation:.2f}",
                      "-" if row.lip_confidence is None else f"{row.lip_confidence:.1f}",
                      "refused" if row.lip_guarded and row.lip_offset_ms is not None else "-")
    console.print(table)
    result = {
        "tuning": summary([row for row in rows if row.split == "tuning"]),
        "validation": summary([row for row in rows if row.split == "validation"]),
        "mismatched": answered_pairs(mismatched),
        "other_sounds": answered_pairs(other_pairs),
        "lip_min_confidence": MIN_CONFIDENCE,
        "operating_points": operating_points(rows, mismatched),
        "seconds": round(time.perf_counter() - started, 1),
    }
    console.print_json(data=result)
    if args.json:
        args.json.write_text(json.dumps({"rows": [row.__dict__ for row in rows], "mismatched_pairs": mismatched,
                                         "other_sound_pairs": other_pairs, **result}, indent=1))


if __name__ == "__main__":
    main()
