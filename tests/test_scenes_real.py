"""Scene cuts and picture events on real footage: development clips joined at known frames (conformed
to 320x180 at 25 fps, as a sequence conforms its shots) cut exactly there and nowhere else, a real
cut in the VP9 road-trip clip is found, and every uncut development clip has none.

The joins include two lip-sync results of the same face (a cut that changes little), and 8 fps
CogVideoX clips conformed to 25 fps by repeating frames (every new frame jumps; before the held
frames were left out of the baseline each was taken for a cut). ``TUNING`` showed that; ``VALIDATION``
(the slow test) was measured after the change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.media.runner import run_ffmpeg
from pipeline.analysis.onsets import picture_events
from pipeline.analysis.scenes import detect_cuts

DEVCLIPS = Path("../shared/devclips")
pytestmark = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips is absent")
RATE = 25

# (clip, first frame, frames) per shot.
TUNING = (
    (("ai_infinitetalk_compare_0.mp4", 10, 42), ("ai_latentsync_compare_1.mp4", 20, 51),
     ("speech_latentsync_demo2_portrait_hevc.mp4", 5, 58)),
    (("ai_infinitetalk_speech_a.mp4", 30, 42), ("ai_cogvideox_horse.mp4", 0, 41), ("ai_infinitetalk_dubbing_a.mp4", 7, 29)),
    (("speech_face_2.mp4", 3, 33), ("speech_face_5.mp4", 12, 35), ("mp3_in_mp4_outdoor.mp4", 20, 55)),
    (("face_driving_d6.mp4", 0, 39), ("face_driving_d10.mp4", 25, 47), ("ai_infinitetalk_compare_0.mp4", 30, 44)),
    (("ai_cogvideox_horse.mp4", 2, 54), ("ai_cogvideox_1.mp4", 0, 43), ("ai_cogvideox_horse.mp4", 10, 53)),
)
VALIDATION = (
    (("ai_infinitetalk_dubbing_b.mp4", 5, 53), ("ai_infinitetalk_speech_b.mp4", 14, 40), ("face_driving_d10.mp4", 0, 28)),
    (("real_vggsound_whale_shark.mp4", 9, 44), ("face_driving_d6.mp4", 31, 34), ("ai_infinitetalk_dubbing_a.mp4", 2, 32)),
    (("face_driving_d6.mp4", 17, 26), ("ai_cogvideox_1.mp4", 3, 31), ("real_vggsound_whale_shark.mp4", 0, 36)),
    (("speech_face_5.mp4", 0, 36), ("ai_infinitetalk_i2v_8.mp4", 22, 48), ("ai_cogvideox_horse.mp4", 1, 43)),
    (("ai_cogvideox_horse.mp4", 4, 40), ("speech_latentsync_demo2_portrait_hevc.mp4", 8, 46),
     ("ai_infinitetalk_dubbing_a.mp4", 19, 27)),
    (("ai_infinitetalk_speech_a.mp4", 11, 58), ("speech_face_5.mp4", 6, 32), ("face_driving_d6.mp4", 38, 40)),
    (("face_driving_d10.mp4", 9, 34), ("ai_infinitetalk_speech_b.mp4", 33, 56), ("speech_latentsync_demo2_portrait_hevc.mp4", 0, 36)),
    (("ai_infinitetalk_dubbing_b.mp4", 0, 30), ("speech_latentsync_demo2_portrait_hevc.mp4", 21, 28),
     ("mp3_in_mp4_outdoor.mp4", 2, 28)),
)
UNCUT = ("ai_cogvideox_1.mp4", "ai_cogvideox_horse.mp4", "ai_infinitetalk_compare_0.mp4", "ai_latentsync_compare_1.mp4",
         "speech_face_2.mp4", "speech_face_5.mp4", "real_vggsound_whale_shark.mp4", "mp3_in_mp4_outdoor.mp4",
         "ai_infinitetalk_dubbing_a.mp4", "ai_infinitetalk_dubbing_b.mp4", "face_driving_d10.mp4", "ai_infinitetalk_i2v_8.mp4",
         "speech_latentsync_demo2_portrait_hevc.mp4", "ai_infinitetalk_speech_a.mp4", "ai_infinitetalk_speech_b.mp4",
         "face_driving_d6.mp4", "vp9_alpha.webm")


def join(shots, path: Path) -> tuple[Path, tuple[int, ...]]:
    """The shots conformed and joined; the first frame of each shot after the first."""
    inputs, chains = [], []
    for number, (name, first, frames) in enumerate(shots):
        inputs += ["-i", str(DEVCLIPS / name)]
        chains.append(f"[{number}:v]fps={RATE},trim=start_frame={first}:end_frame={first + frames},setpts=PTS-STARTPTS,"
                      "scale=320:180:force_original_aspect_ratio=increase,crop=320:180,setsar=1,format=yuv420p"
                      f"[v{number}]")
    chains.append("".join(f"[v{n}]" for n in range(len(shots))) + f"concat=n={len(shots)}:v=1:a=0[out]")
    run_ffmpeg([*inputs, "-filter_complex", ";".join(chains), "-map", "[out]", "-c:v", "libx264", "-preset", "veryfast",
                "-crf", "20", str(path)])
    return path, tuple(int(edge) for edge in np.cumsum([frames for _, _, frames in shots])[:-1])


def _check_joins(joins, folder: Path) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    found = []
    for number, shots in enumerate(joins):
        path, truth = join(shots, folder / f"join{number}.mp4")
        found.append((truth, detect_cuts(path).cut_frames))
    return found


def test_joined_real_clips_cut_exactly_at_the_joins(tmp_path):
    results = _check_joins(TUNING[:2], tmp_path)
    assert all(truth == found for truth, found in results), results


def test_the_strongest_picture_events_of_a_join_are_its_cuts(tmp_path):
    path, truth = join(TUNING[0], tmp_path / "faces.mp4")
    events = picture_events(path)
    assert tuple(sorted(np.argsort(events.strength)[-len(truth):])) == truth


def test_a_real_cut_inside_a_clip_is_found():
    # The road-trip clip cuts from green hills to a town at frame 42.
    assert detect_cuts(DEVCLIPS / "vp9_10bit_roadtrip.webm").cut_frames == (42,)


@pytest.mark.slow
def test_every_join_and_every_uncut_clip(tmp_path, capsys):
    results = {"tuning": _check_joins(TUNING, tmp_path), "validation": _check_joins(VALIDATION, tmp_path)}
    uncut = {name: detect_cuts(DEVCLIPS / name).cut_frames for name in UNCUT}
    with capsys.disabled():
        for split, rows in results.items():
            print(f"\n{split}: | cuts at | found |\n" + "\n".join(f"| {truth} | {found} |" for truth, found in rows))
        print("uncut clips with cuts found:", {name: cuts for name, cuts in uncut.items() if cuts})
    assert all(truth == found for rows in results.values() for truth, found in rows)
    assert not any(uncut.values())
