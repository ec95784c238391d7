"""Enhancement through the whole pipeline: speed conforms (24 -> 25, 23.976 -> 24, 30 -> 29.97) keep
every frame and stretch the sound with its pitch kept; the ffmpeg-native modes land in the argv; the
learned upscaler runs a model the test builds; bad settings are job errors naming the field."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.plan.enhance import EnhanceSettings, speed_factor
from pipeline.errors import JobError
from pipeline.jobs.finish import finish
from pipeline.jobs.sequence import plan_with_analysis
from pipeline.media.frames import IntermediateSpec, decode_frames, encode_intermediate, working_format
from pipeline.model.job import parse_job
from pipeline.prestage.learned_upscale import OnnxUpscaler
from pipeline.media.runner import run_ffmpeg
from pipeline.media.motion_synth import scene_frames, write_clip
from pipeline.plan.planner import plan_job
from pipeline.model.presets import load_presets
from pipeline.media.probe import decoded_audio_samples, probe
from pipeline.render.renderer import remove_intermediates
from pipeline.plan.facts import JobFacts
from tests.measure import decode_audio, frames_rgb

PRESET = "master-prores-4444"


def _testsrc(path: Path, rate: str, frames: int, tone_hz: int = 1000, size: str = "160x90") -> Path:
    """A numbered test pattern with a tone as long as the picture (lossless picture, PCM sound)."""
    if not path.exists():
        duration = f"{float(Fraction(frames) / Fraction(rate)):.6f}"
        run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}", "-f", "lavfi",
                    "-i", f"sine=f={tone_hz}:r=48000", "-frames:v", str(frames), "-t", duration,
                    "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le",
                    str(path)])
    return path


def _job(tmp_path: Path, sources: list[Path], video: dict, enhance: dict | None = None):
    data = {"version": 1, "name": "enh", "shots": [{"source": str(s)} for s in sources],
            "deliverables": [{"preset": PRESET, "overrides": {"video": video}}]}
    if enhance:
        data["enhance"] = enhance
    return parse_job(data, tmp_path)


def _finish_one(job, out: Path) -> Path:
    finish(job, out)
    return next(out.glob("*.mov"))


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    windowed = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    peak = int(np.argmax(spectrum[1:])) + 1
    # Parabolic interpolation between bins for a sub-bin estimate.
    left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    shift = 0.5 * (left - right) / (left - 2 * centre + right)
    return (peak + shift) * rate / len(samples)


def test_speed_24_to_25_keeps_every_frame_and_the_pitch(tmp_path):
    source = _testsrc(tmp_path / "tone24.mp4", "24", 240)
    output = _finish_one(_job(tmp_path, [source], {"frame_rate": 25, "rate_conversion": "speed"}), tmp_path / "out")
    info = probe(output)
    assert info.video.frame_rate == 25
    assert info.video.frame_count == 240
    assert info.video.duration_s == Fraction(48, 5)  # 9.6 s
    samples, rate, _ = decode_audio(output)
    assert samples.shape[1] == 9.6 * 48000  # sound exactly as long as the picture
    middle = samples[0, rate * 2 : rate * 8]
    assert abs(_dominant_hz(middle, rate) - 1000) < 10  # pitch kept within 1 %
    # Every source frame is there, in order: the last output frame is the source's last, not the one before.
    source_frames = frames_rgb(source)[-4:].astype(float)
    last_output = frames_rgb(output)[-1].astype(float)
    distances = [np.abs(last_output - frame).mean() for frame in source_frames]
    assert int(np.argmin(distances)) == 3


@pytest.mark.parametrize(("rate", "target", "frames"), [("24000/1001", "24", 48), ("30", "30000/1001", 60)])
def test_speed_conforms_the_1001_rates_frame_for_frame(tmp_path, rate, target, frames):
    source = _testsrc(tmp_path / f"src-{rate.replace('/', '_')}.mp4", rate, frames)
    output = _finish_one(_job(tmp_path, [source], {"frame_rate": target, "rate_conversion": "speed"}),
                         tmp_path / "out")
    info = probe(output)
    assert info.video.frame_rate == Fraction(target)
    assert info.video.frame_count == frames
    assert info.video.duration_s == frames / Fraction(target)
    assert decoded_audio_samples(output) == frames / Fraction(target) * 48000


def test_speed_refuses_a_large_change():
    with pytest.raises(JobError, match="rate_conversion speed: 30 -> 25"):
        speed_factor("speed", Fraction(30), Fraction(25))


def test_native_modes_reach_the_ffmpeg_graph(tmp_path):
    source = _testsrc(tmp_path / "small24.mp4", "24", 12)
    media = {source: probe(source)}
    cases = {
        "blend": ({"frame_rate": 30, "rate_conversion": "blend"}, "framerate=fps=30"),
        "mci": ({"frame_rate": 30, "rate_conversion": "mci"}, "minterpolate=fps=30"),
        "spline36": ({"width": 320, "height": 180, "upscale": "spline36"}, "filter=spline36"),
        "sharpen": ({"width": 320, "height": 180, "sharpen": 0.4}, "unsharp="),
    }
    for video, expected in cases.values():
        plan = plan_job(_job(tmp_path, [source], video), JobFacts(media), load_presets(), tmp_path)
        graph = " ".join(plan.renders[0].args)
        assert expected in graph
    plain = " ".join(plan_job(_job(tmp_path, [source], {}), JobFacts(media), load_presets(), tmp_path).renders[0].args)
    assert "minterpolate" not in plain and "framerate=" not in plain and "zscale" not in plain


def test_job_level_enhance_overrides_the_preset(tmp_path):
    source = _testsrc(tmp_path / "small24b.mp4", "24", 12)
    job = _job(tmp_path, [source], {"frame_rate": 30}, enhance={"rate_conversion": "mci"})
    plan = plan_job(job, JobFacts({source: probe(source)}), load_presets(), tmp_path)
    assert "minterpolate=fps=30" in " ".join(plan.renders[0].args)


@pytest.mark.parametrize("mode", ["blend", "mci"])
def test_native_rate_modes_keep_the_duration(tmp_path, mode):
    source = _testsrc(tmp_path / "one-second.mp4", "24", 24)
    output = _finish_one(_job(tmp_path, [source], {"frame_rate": 30, "rate_conversion": mode}), tmp_path / mode)
    info = probe(output)
    assert info.video.frame_count == 30 and info.video.duration_s == 1
    assert decoded_audio_samples(output) == 48000


def _nearest_model(path: Path, blur: bool = False) -> Path:
    """A x2 super-resolution ONNX model: 3x3 conv to 12 channels (each colour 4 times, or blurred),
    then DepthToSpace. Without ``blur`` it is exactly a nearest-neighbour upscale."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((12, 3, 3, 3), np.float32)
    kernel = np.full((3, 3), 1 / 9, np.float32) if blur else np.pad([[1.0]], 1).astype(np.float32)
    for channel in range(3):
        weights[channel * 4 : channel * 4 + 4, channel] = kernel
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["features"], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["features"], ["upscaled"], blocksize=2, mode="CRD")],
        "tiny-sr",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("upscaled", TensorProto.FLOAT, [1, 3, "H", "W"])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_learned_upscaler_tiles_without_seams(tmp_path):
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    nearest = OnnxUpscaler(_nearest_model(tmp_path / "nearest.onnx"), tile_px=32, overlap_px=4)
    assert nearest.scale == 2
    assert np.array_equal(nearest.upscale(picture), picture.repeat(2, axis=0).repeat(2, axis=1))
    blur_model = _nearest_model(tmp_path / "blur.onnx", blur=True)
    tiled = OnnxUpscaler(blur_model, tile_px=24, overlap_px=4).upscale(picture).astype(int)
    whole = OnnxUpscaler(blur_model, tile_px=512, overlap_px=4).upscale(picture).astype(int)
    assert np.abs(tiled - whole).max() <= 1


def test_learned_upscale_runs_the_model_in_a_job(tmp_path):
    source = tmp_path / "blocks.mp4"
    write_clip(scene_frames("pan", 160, 90, Fraction(24), 12), source, Fraction(24), tone_hz=440)
    model = _nearest_model(tmp_path / "nearest2.onnx")
    video = {"width": 320, "height": 180}
    learned = _finish_one(_job(tmp_path, [source], video, {"upscale": "learned", "model": str(model)}),
                          tmp_path / "learned")
    lanczos = _finish_one(_job(tmp_path, [source], video), tmp_path / "lanczos")
    assert not list((tmp_path / "learned").glob(".*enhanced*"))  # the intermediate is gone
    original = frames_rgb(source)[5].astype(float)
    blocky = original.repeat(2, axis=0).repeat(2, axis=1)
    learned_frame = frames_rgb(learned)[5].astype(float)
    lanczos_frame = frames_rgb(lanczos)[5].astype(float)
    # The nearest-neighbour model's output is what came out, not the lanczos scaler's.
    assert np.abs(learned_frame - blocky).mean() < 0.5 * np.abs(lanczos_frame - blocky).mean()
    assert probe(learned).video.frame_count == 12


def test_learned_without_a_model_is_a_job_error(tmp_path):
    source = _testsrc(tmp_path / "small24c.mp4", "24", 12)
    job = _job(tmp_path, [source], {"width": 320, "height": 180}, enhance={"upscale": "learned"})
    with pytest.raises(JobError, match="enhance.model"):
        finish(job, tmp_path / "out")
    assert EnhanceSettings(upscale="learned").needs_python_stage


FLOW_50 = {"frame_rate": 50, "rate_conversion": "flow"}


def test_flow_into_a_higher_rate_counts_a_dissolve_at_the_sequence_rate(tmp_path):
    first = _testsrc(tmp_path / "a25.mp4", "25", 25)
    second = _testsrc(tmp_path / "b25.mp4", "25", 25, tone_hz=500)
    job = parse_job({"version": 1, "name": "dis", "deliverables": [{"preset": PRESET, "overrides": {"video": FLOW_50}}],
                     "shots": [{"source": str(first), "transition": {"type": "dissolve", "frames": 10}},
                               {"source": str(second)}]}, tmp_path)
    out = tmp_path / "out"
    plan = plan_with_analysis(job, JobFacts({path: probe(path) for path in (first, second)}), load_presets(), out,
                              measure_loudness=False)
    remove_intermediates(plan)
    # 10 frames at the sequence's 25 fps (the first source's, not its 50 fps intermediate's) overlap
    # 0.4 s: two 1 s shots make 1.6 s, 80 frames at 50 fps.
    assert plan.outputs[0].expected.frame_count == 80
    output = _finish_one(job, out)
    assert probe(output).video.frame_count == 80 and probe(output).video.duration_s == Fraction(8, 5)
    assert decoded_audio_samples(output) == Fraction(8, 5) * 48000
    assert not list(out.glob(".*enhanced*"))


def test_enhanced_sources_are_shared_by_cutdowns_and_removed_only_with_the_job(tmp_path):
    sources = [_testsrc(tmp_path / "c25.mp4", "25", 25), _testsrc(tmp_path / "d25.mp4", "25", 25, tone_hz=500)]
    media = {path: probe(path) for path in sources}
    out = tmp_path / "out"

    def job_with_cutdown(seconds: int):
        return parse_job({"version": 1, "name": "cut", "shots": [{"source": str(s)} for s in sources],
                          "deliverables": [{"preset": PRESET, "overrides": {"video": FLOW_50}, "cutdowns": [seconds]}]},
                         tmp_path)

    # A cut-down longer than the sequence fails after the whole-length deliverable's sources were enhanced.
    with pytest.raises(JobError):
        plan_with_analysis(job_with_cutdown(5), JobFacts(media), load_presets(), out, one_process=False,
                           measure_loudness=False)
    assert not list(out.glob(".*enhanced*"))

    plan = plan_with_analysis(job_with_cutdown(1), JobFacts(media), load_presets(), out, one_process=False,
                              measure_loudness=False)
    enhanced = sorted(out.glob(".*enhanced*"))
    assert len(enhanced) == 2  # one per source, made once for the whole length and the cut-down
    assert sorted(plan.scratch_files) == enhanced
    assert len(plan.renders) == 2
    for render_plan in plan.renders:
        assert any(str(path) in render_plan.args for path in enhanced)  # the cut-down is flow-converted too
        assert not set(render_plan.intermediates) & set(enhanced)  # no render's failure removes them
    assert [output.expected.frame_count for output in plan.outputs] == [100, 50]
    remove_intermediates(plan)
    assert not list(out.glob(".*enhanced*"))


def test_a_failed_intermediate_encode_leaves_no_file(tmp_path):
    source = _testsrc(tmp_path / "small25.mp4", "25", 12)
    media = probe(source)
    raw = working_format(media.video)
    spec = IntermediateSpec(raw, Fraction(25), 12, media)

    def failing_after_some_frames():
        for number, frame in enumerate(decode_frames(source, raw)):
            yield frame
            if number == 4:
                deadline = time.monotonic() + 10
                while not list(tmp_path.glob("*x.enhanced*")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert list(tmp_path.glob("*x.enhanced*"))  # ffmpeg has started writing
                raise RuntimeError("the frame source failed")

    with pytest.raises(RuntimeError, match="frame source failed"):
        encode_intermediate(failing_after_some_frames(), spec, tmp_path / "x.enhanced.mov")
    assert not list(tmp_path.glob("*x.enhanced*"))
    assert encode_intermediate(decode_frames(source, raw), spec, tmp_path / "x.enhanced.mov") == 12
    assert [path.name for path in tmp_path.glob("*x.enhanced*")] == ["x.enhanced.mov"]
    assert probe(tmp_path / "x.enhanced.mov").video.frame_count == 12
