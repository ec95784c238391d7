"""Fixing sync: a copy of a clip with its sound moved by a measured offset (and drift taken out),
the picture copied bit for bit, written to a partial name, checked and renamed.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import JobError, MediaError, VerificationError
from pipeline.files import partial_path
from pipeline.media.isobmff import is_faststart
from pipeline.media.probe import MediaInfo, decoded_audio_samples, probe
from pipeline.media.runner import require_capabilities, run_ffmpeg
from pipeline.model.timebase import round_half_up
from pipeline.analysis.sync_report import SyncReport, declared_timing

_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
"""Output muxer by file extension: the partial file's own name cannot tell ffmpeg."""
SHIFT_FILTERS = ("atrim", "asetpts", "apad", "adelay", "anull", "asetrate", "aresample")
"""The filters :func:`audio_shift_filter` uses."""
_ENCODERS = {"mp3": "libmp3lame", "opus": "libopus", "vorbis": "libvorbis"}
"""Encoders whose name differs from their codec's; every other codec is encoded by its own name."""


def shift_samples(offset_ms: float, sample_rate: int) -> int:
    """The offset in samples at ``sample_rate``, rounded to the nearest sample."""
    return round_half_up(Fraction(str(offset_ms)) / 1000 * sample_rate)


def audio_shift_filter(
    offset_ms: float, sample_rate: int, sample_count: int, drift_ms_per_min: float | None = None
) -> str:
    """An ffmpeg audio filter chain that corrects ``offset_ms`` and keeps ``sample_count`` samples.

    Late sound (``offset_ms > 0``) loses its first samples and gains as much silence at the end;
    early sound (``offset_ms < 0``) gets silence in front and loses as much at the end. The first
    sample keeps its presentation time, so stream start times do not change.

    With ``drift_ms_per_min`` the sound is first resampled to play that much faster (slower when
    negative), then shifted by ``offset_ms``, which must then be the offset at the picture's start
    (:attr:`SyncReport.offset_at_start_ms`). The speed change is resolved to one sample per second
    of the rate, about 1.25 ms per minute at 48 kHz; the pitch moves by as little (0.1% at 60 ms/min).
    """
    shift = shift_samples(offset_ms, sample_rate)
    if drift_ms_per_min:
        played_rate = round_half_up(sample_rate * (1 + Fraction(str(drift_ms_per_min)) / 60_000))
        chain = [f"asetrate={played_rate}", f"aresample={sample_rate}", "asetpts=N/SR/TB"]
        if shift > 0:
            chain += [f"atrim=start_sample={shift}", "asetpts=N/SR/TB"]
        elif shift < 0:
            chain += [f"adelay=delays={-shift}S:all=1"]
        return ",".join([*chain, f"apad=whole_len={sample_count}", f"atrim=end_sample={sample_count}"])
    if shift > 0:
        return f"atrim=start_sample={shift},asetpts=PTS-{shift}/SR/TB,apad=pad_len={shift}"
    if shift < 0:
        return f"adelay=delays={-shift}S:all=1,atrim=end_sample={sample_count}"
    return "anull"


def fix_sync_args(
    source: Path,
    info: MediaInfo,
    offset_ms: float,
    sample_count: int,
    output: Path,
    *,
    muxer: str,
    audio_bit_rate: int | None,
    faststart: bool,
    drift_ms_per_min: float | None = None,
) -> list[str]:
    """ffmpeg arguments that copy the video stream and re-encode the shifted audio like the source.

    Args:
        source: The clip to fix.
        info: Its probe.
        offset_ms: Its measured offset (> 0: sound late).
        sample_count: Audio samples per channel the source decodes to; the output keeps as many.
        output: File to write (usually the partial name).
        muxer: ffmpeg muxer for ``output``.
        audio_bit_rate: The source's audio bit rate in bits per second, None for PCM or unknown.
        faststart: Put the index before the media data, as the source has it.
        drift_ms_per_min: Measured drift to take out by resampling; ``offset_ms`` is then the
            offset at the picture's start.
    """
    audio = info.audio
    assert audio is not None
    args = ["-i", str(source), "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "0", "-c:v", "copy",
            "-filter:a", audio_shift_filter(offset_ms, audio.sample_rate, sample_count, drift_ms_per_min),
            "-c:a", audio_encoder(audio.codec), "-ar", str(audio.sample_rate), "-ch_layout", audio.layout]
    if audio_bit_rate:
        args += ["-b:a", str(audio_bit_rate)]
    if faststart:
        args += ["-movflags", "+faststart"]
    return [*args, "-f", muxer, str(output)]


def audio_encoder(codec: str) -> str:
    """The ffmpeg encoder that writes ``codec`` (``aac`` -> ``aac``, ``mp3`` -> ``libmp3lame``)."""
    return _ENCODERS.get(codec, codec)


def fix_sync(
    path: str | Path,
    offset_ms: float,
    out_path: str | Path,
    media_info: MediaInfo | None = None,
    drift_ms_per_min: float | None = None,
) -> Path:
    """Write a copy of ``path`` to ``out_path`` with its sound moved by ``-offset_ms``.

    With ``drift_ms_per_min`` the sound is also resampled so the drift goes, and ``offset_ms`` must
    be the offset at the picture's start (:attr:`SyncReport.offset_at_start_ms`); see
    :func:`fix_report` to act on a report directly.

    The video stream is copied bit for bit; the first audio stream is shifted sample-accurately
    and re-encoded with the source's codec, rate, channels and bit rate; the sample count stays the
    same, so the duration does too. The output is written to a partial name (``.NAME.WRITER.partial``), checked and only
    then renamed; the input is never modified. (An AAC stream that starts after the picture comes
    back starting one AAC frame sooner, with as many more samples: ffmpeg's MP4 muxer presents
    the new encoder's priming there. The content keeps its corrected place.)

    Raises:
        JobError: ``out_path`` is the input itself, or its extension names no known container.
        MediaError: the input is unreadable or has no audio.
        RenderError: ffmpeg failed, or the output lost frames or samples.
    """
    path, out_path = Path(path), Path(out_path)
    if out_path.exists() and out_path.resolve() == path.resolve():
        raise JobError(f"{out_path}: the fixed copy would overwrite its input; name another file")
    muxer = _MUXERS.get(out_path.suffix.lower())
    if muxer is None:
        raise JobError(f"{out_path}: cannot tell the container from the extension "
                       f"(use one of {', '.join(sorted(_MUXERS))})")
    info = media_info or probe(path)
    if info.audio is None:
        raise MediaError(path, "has no audio stream to shift")
    sample_count = decoded_audio_samples(path)
    with av.open(str(path), metadata_errors="ignore") as container:
        bit_rate = container.streams.audio[0].bit_rate if not info.audio.codec.startswith("pcm_") else None
    partial = partial_path(out_path)
    args = fix_sync_args(
        path, info, offset_ms, sample_count, partial, muxer=muxer, audio_bit_rate=bit_rate,
        faststart=muxer in ("mp4", "mov") and is_faststart(path), drift_ms_per_min=drift_ms_per_min,
    )
    require_capabilities(encoders=[audio_encoder(info.audio.codec)], filters=SHIFT_FILTERS)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_ffmpeg(args, expected_duration_s=float(info.duration_s))
        _check_fixed(partial, info, sample_count)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out_path)
    return out_path


def fix_report(report: SyncReport, out_path: str | Path) -> Path:
    """Write a copy of the reported clip with its measured offset, and drift when real, taken out.

    Raises:
        JobError: the report's offset is undetermined, or ``out_path`` is not usable.
    """
    if report.offset_ms is None:
        raise JobError(f"{report.path}: not fixed, the offset is undetermined ({report.reason})")
    if report.drift_ms_per_min is not None and report.offset_at_start_ms is not None:
        return fix_sync(report.path, report.offset_at_start_ms, out_path,
                        drift_ms_per_min=report.drift_ms_per_min)
    return fix_sync(report.path, report.offset_ms, out_path)


def _check_fixed(output: Path, source: MediaInfo, sample_count: int) -> None:
    """The fixed copy has the source's frames and, within one audio frame, its samples.

    A shifted copy held to its source, not a deliverable held to its promises: that is the one
    conformance check, :func:`pipeline.render.verify.find_mismatches`."""
    fixed = probe(output)
    mismatches = []
    if fixed.video.frame_count != source.video.frame_count:
        mismatches.append(f"frame count {fixed.video.frame_count}, source has {source.video.frame_count}")
    if fixed.video.start_time_s != source.video.start_time_s:
        mismatches.append(
            f"video starts at {fixed.video.start_time_s} s, source at {source.video.start_time_s} s"
        )
    fixed_samples = decoded_audio_samples(output)
    _, tolerance = declared_timing(output)
    if abs(fixed_samples - sample_count) > tolerance:
        mismatches.append(f"{fixed_samples} audio samples, source has {sample_count} (tolerance {tolerance})")
    if mismatches:
        raise VerificationError(output, mismatches)
