"""Audio track layouts of a deliverable: the programme sound spread over the tracks a spec asks for.

The programme is mixed, corrected and limited once, as stereo; only then is it laid out in tracks,
so every track that carries it carries the same samples. Layouts (``AudioSpec.tracks``):

- ``stereo``: one stereo track.
- ``stereo+stereo``: the programme, then a second stereo pair (a copy or silence).
- ``8-mono``: eight mono tracks as XDCAM HD422 and many broadcasters' specs lay them out: 1-2 the
  programme's left and right, 3-4 a copy of them or silence, 5-8 silent.
"""

from __future__ import annotations

from typing import Literal


from pipeline.model.presets import AudioSpec

TrackContent = Literal["programme", "left", "right", "silent"]
"""What one track carries: the stereo programme, one of its channels (a mono track), or silence."""


def track_contents(spec: AudioSpec) -> tuple[TrackContent, ...]:
    """What each track of the layout carries, in stream order."""
    copy = spec.second_pair == "copy"
    if spec.tracks == "stereo":
        return ("programme",)
    if spec.tracks == "stereo+stereo":
        return ("programme", "programme" if copy else "silent")
    pair: tuple[TrackContent, ...] = ("left", "right") if copy else ("silent", "silent")
    return ("left", "right", *pair, "silent", "silent", "silent", "silent")


def programme_tracks(spec: AudioSpec) -> tuple[int, ...]:
    """Audio stream numbers (0 is the first audio stream) that together make the stereo programme."""
    return (0,) if spec.tracks in ("stereo", "stereo+stereo") else (0, 1)


def lay_out_tracks(programme, spec: AudioSpec) -> list:
    """The stereo ``programme`` (an ffmpeg-python stream) as one stream per track of ``spec``.

    Silence is made from the programme itself (``aeval`` writing zeros), so every track has exactly
    the programme's sample count.
    """
    contents = track_contents(spec)
    if contents == ("programme",):
        return [programme]
    # A "right" track comes from the channelsplit of the "left" one before it.
    uses = sum(1 for content in contents if content != "right")
    branches = iter(programme.filter_multi_output("asplit", uses)[index] for index in range(uses))
    layout = "mono" if spec.tracks == "8-mono" else "stereo"
    silent = ("0" if layout == "mono" else "0|0")
    tracks = []
    pending_right = None
    for content in contents:
        if content == "programme":
            tracks.append(next(branches))
        elif content == "left":
            split = next(branches).filter_multi_output("channelsplit", channel_layout="stereo")
            tracks.append(split[0])
            pending_right = split[1]
        elif content == "right":
            tracks.append(pending_right)
        else:
            tracks.append(next(branches).filter("aeval", exprs=silent, channel_layout=layout))
    return tracks


TRACK_FILTERS = ("asplit", "channelsplit", "aeval")
"""ffmpeg filters :func:`lay_out_tracks` uses."""
