"""A picture analysis that runs in a thread of its own while a source pass decodes.

:func:`pipeline.media.source_decode.decode_source` hands each frame to its consumers one after the
other, in the thread that decodes. An analysis written as a function over an iterable of decoded
frames (the face tracker: :func:`pipeline.analysis.lipsync.follow_mouths`) is given those frames
through a short queue instead, and works on them in a second thread while the decoder and the other
consumers go on. The heavy parts on both sides (FFmpeg's decoder and scaler, OpenCV's resizing,
optical flow and neural networks) release Python's lock while they run, so two cores are used.

The queue holds at most :data:`BACKLOG_FRAMES` frames: memory stays flat in clip length, and a
decoder faster than the analysis waits for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import av
import numpy as np

from pipeline.media.source_decode import Image, PictureNeed

BACKLOG_FRAMES = 8
"""Decoded frames waiting for the analysis at most (about 11 MB at 720p)."""

Result = TypeVar("Result")
_END = object()
"""Put on the queue after the last frame."""


class PictureThread(Generic[Result]):
    """A picture consumer that feeds ``analyse(frames)`` in a worker thread, every decoded frame
    (:class:`pipeline.media.source_decode.Image` ``frame``) in decode order.

    Use it as a context manager around the decode, so the thread ends even when the decode fails;
    :meth:`result` then gives what ``analyse`` returned, or raises what it raised.
    """

    picture_need = PictureNeed((Image("frame"),))
    """Every frame, as decoded."""

    def __init__(self, analyse: Callable[[Iterator[av.VideoFrame]], Result], name: str) -> None:
        """``name`` names the thread (for profilers and stack dumps)."""
        self._queue: queue.Queue[object] = queue.Queue(maxsize=BACKLOG_FRAMES)
        self._ended = False
        self._closed = False
        self._result: Result | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(analyse,), name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> PictureThread[Result]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_picture(self, index: int, time_s: float | None, images: tuple[av.VideoFrame | np.ndarray, ...]) -> None:
        """Queue the next frame for the analysis; waits while the queue is full."""
        self._queue.put(images[0])

    def close(self) -> None:
        """Tell the analysis the frames have ended and wait for it to finish."""
        if not self._closed:
            self._closed = True
            self._queue.put(_END)
            self._thread.join()

    def result(self) -> Result:
        """What the analysis returned for all the frames fed.

        Raises:
            Whatever the analysis raised.
        """
        self.close()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def _frames(self) -> Iterator[av.VideoFrame]:
        while (frame := self._queue.get()) is not _END:
            yield frame  # type: ignore[misc]
        self._ended = True

    def _work(self, analyse: Callable[[Iterator[av.VideoFrame]], Result]) -> None:
        try:
            self._result = analyse(self._frames())
        except BaseException as error:  # handed to the caller by result()
            self._error = error
        # An analysis that stopped early must not leave the decoder waiting on a full queue.
        while not self._ended:
            self._ended = self._queue.get() is _END
