"""Shot boundaries: cuts found to the frame; a flash and fast motion are not cuts."""

from __future__ import annotations

from pipeline.media.runner import run_ffmpeg
from pipeline.analysis.scenes import detect_cuts

RATE = 24


def test_cuts_are_found_on_their_frames_and_flashes_and_motion_are_not(clip_dir):
    """Three shots (cuts at frames 30 and 70) of a fast-moving pattern, with a one-frame white
    flash at frame 50 and a two-frame one at 85."""
    clip = clip_dir / "scenes-cuts.mp4"
    shots = ";".join(
        f"testsrc2=s=320x180:r={RATE}:d={seconds}{look}[s{number}]"
        for number, (seconds, look) in enumerate(((30 / RATE, ""), (40 / RATE, ",negate"), (30 / RATE, ",vflip")))
    )
    graph = (
        f"{shots};[s0][s1][s2]concat=n=3:v=1:a=0,"
        "drawbox=c=white:t=fill:enable='eq(n,50)+between(n,85,86)'[out]"
    )
    run_ffmpeg(["-filter_complex", graph, "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast",
                "-crf", "20", "-pix_fmt", "yuv420p", str(clip)])
    cuts = detect_cuts(clip)
    assert cuts.frame_count == 100
    assert cuts.cut_frames == (30, 70)
    assert cuts.shots == ((0, 30), (30, 70), (70, 100))


def test_a_single_shot_has_no_cuts(clip_dir):
    clip = clip_dir / "scenes-single.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=320x180:r={RATE}:d=2", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", str(clip)])
    assert detect_cuts(clip).cut_frames == ()
