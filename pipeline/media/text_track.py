"""Read a file's timed-text subtitle track (``mov_text``, 3GPP tx3g) back, cue by cue.

Each ``mov_text`` sample is a 16-bit big-endian text length, the UTF-8 text, then optional style
boxes; empty samples fill the gaps between cues. The text is taken from the packets themselves,
not through ffmpeg's decoder (which turns it into ASS markup), so what is compared is what a player
reads.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import MediaError


def read_text_track(path: str | Path) -> list[tuple[Fraction, Fraction, str]]:
    """(start s, end s, text) of each non-empty sample of the first subtitle stream of ``path``;
    empty when the file has none.

    Raises:
        MediaError: the file does not open, or a sample is not timed text.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.subtitles:
                return []
            stream = container.streams.subtitles[0]
            cues = []
            for packet in container.demux(stream):
                payload = bytes(packet)
                if len(payload) < 2 or packet.pts is None:
                    continue
                length = int.from_bytes(payload[:2], "big")
                if length == 0:
                    continue
                if length > len(payload) - 2:
                    raise MediaError(path, f"subtitle sample at {packet.pts} says {length} bytes of text, "
                                           f"has {len(payload) - 2}")
                start = packet.pts * stream.time_base
                cues.append((start, start + (packet.duration or 0) * stream.time_base,
                             payload[2 : 2 + length].decode("utf-8", errors="replace")))
            return cues
    except av.error.FFmpegError as error:
        raise MediaError(path, f"does not open to read its subtitle track ({error.strerror or error})") from error
