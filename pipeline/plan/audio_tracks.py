"""The programme's channel layout, and its sound spread over the audio tracks a spec asks for.

The programme is stereo or 5.1 (``AudioSpec.layout``; ``source`` takes 5.1 when a shot's sound is
5.1, see :func:`resolve_programme_layout`). It is mixed, corrected and limited once in that layout;
only then is it laid out in tracks, so every track that carries it carries the same samples.
Layouts (``AudioSpec.tracks``):

- stereo programme: ``stereo`` (one stereo track); ``stereo+stereo`` (the programme, then a second
  pair, a copy or silence); ``8-mono`` (eight mono tracks as XDCAM HD422 and many broadcasters'
  specs lay them out: 1-2 the programme's left and right, 3-4 a copy or silence, 5-8 silent).
- 5.1 programme: ``5.1`` (one six-channel track, L R C LFE Ls Rs); ``8-mono`` (1-6 the programme's
  L R C LFE Ls Rs, 7-8 silent).

Each track is described by what each of its channels carries: a programme channel by its ffmpeg
name (``FL``, ``FR``, ``FC``, ``LFE``, ``BL``, ``BR``) or None for digital silence.
"""

from __future__ import annotations

from pipeline.errors import JobError
from pipeline.media.probe import MediaInfo
from pipeline.model.presets import AudioSpec, Preset

PROGRAMME_CHANNELS: dict[str, tuple[str, ...]] = {
    "stereo": ("FL", "FR"),
    "5.1": ("FL", "FR", "FC", "LFE", "BL", "BR"),
}
"""The programme's channels in order, as ffmpeg names them (5.1's surrounds are ``BL``/``BR``)."""
FIVE_ONE_SOURCE_LAYOUTS = ("5.1", "5.1(side)")
"""Source layouts taken as 5.1: ffmpeg maps the side surrounds of ``5.1(side)`` onto the programme's."""
SOURCE_TRACKS = {"5.1": "stereo", "8-mono": "8-mono"}
"""The stereo layout of a ``layout: source`` preset's tracks when the sources are stereo."""

TrackContent = tuple[str | None, ...]
"""What each channel of one track carries: a programme channel's name, or None for silence."""


def is_five_one(info: MediaInfo) -> bool:
    """True when the source's sound is 5.1 (six channels in a 5.1 layout)."""
    return info.audio is not None and info.audio.channels == 6 and info.audio.layout in FIVE_ONE_SOURCE_LAYOUTS


def resolve_programme_layout(preset: Preset, shot_media: list[MediaInfo], index: int) -> Preset:
    """``preset`` with its programme layout decided from the shots' sound: ``source`` becomes 5.1
    when any shot's sound is 5.1 (its ``tracks`` as given) and stereo otherwise (its ``tracks``
    mapped by :data:`SOURCE_TRACKS`); ``stereo`` and ``5.1`` stay.

    Raises:
        JobError: a 5.1 programme without any 5.1 source (nothing to pass through: postprod does not
            invent surround sound); the message names ``deliverables.N``.
    """
    audio = preset.audio
    five_one = any(is_five_one(info) for info in shot_media)
    where = f"deliverables.{index} ({preset.name})"
    if audio.layout == "source":
        layout = "5.1" if five_one else "stereo"
        tracks = audio.tracks if five_one else SOURCE_TRACKS[audio.tracks]
        audio = audio.model_copy(update={"layout": layout, "tracks": tracks})
    elif audio.layout == "5.1" and not five_one:
        raise JobError(f"{where}: audio.layout 5.1 needs a shot whose sound is 5.1, and every shot's is stereo, "
                       "mono or silent; postprod does not upmix. Use audio.layout: source to deliver stereo "
                       "from stereo sources and 5.1 from 5.1 ones")
    return preset.model_copy(update={"audio": audio})


def resolve_for_file(preset: Preset, info: MediaInfo) -> Preset:
    """``preset`` with a ``source`` layout decided from a finished file on its own (``postprod qc``):
    5.1 when its first audio track has six channels, else stereo (an ``8-mono`` file is taken as
    stereo: its mono tracks do not say which programme they carry)."""
    if preset.audio.layout != "source":
        return preset
    five_one = info.audio is not None and info.audio.channels == 6
    tracks = preset.audio.tracks if five_one else SOURCE_TRACKS[preset.audio.tracks]
    audio = preset.audio.model_copy(update={"layout": "5.1" if five_one else "stereo", "tracks": tracks})
    return preset.model_copy(update={"audio": audio})


def programme_channels(spec: AudioSpec) -> tuple[str, ...]:
    """The programme's channel names; a ``source`` layout not yet resolved counts as stereo."""
    return PROGRAMME_CHANNELS.get(spec.layout, PROGRAMME_CHANNELS["stereo"])


def track_contents(spec: AudioSpec) -> tuple[TrackContent, ...]:
    """What each track of the layout carries, in stream order."""
    channels = programme_channels(spec)
    if spec.tracks in ("stereo", "5.1"):
        return (channels,)
    copy = spec.second_pair == "copy"
    if spec.tracks == "stereo+stereo":
        return (channels, channels if copy else (None, None))
    if len(channels) == 6:
        return (*((name,) for name in channels), (None,), (None,))
    pair = ((channels[0],), (channels[1],)) if copy else ((None,), (None,))
    return ((channels[0],), (channels[1],), *pair, *((None,),) * 4)


def programme_tracks(spec: AudioSpec) -> tuple[int, ...]:
    """Audio stream numbers (0 is the first audio stream) that together make the programme."""
    return (0,) if spec.tracks != "8-mono" else tuple(range(len(programme_channels(spec))))


def lay_out_tracks(programme, spec: AudioSpec) -> list:
    """The ``programme`` (an ffmpeg-python stream in the spec's layout) as one stream per track.

    Silence is made from the programme itself (``aeval`` writing zeros), so every track has exactly
    the programme's sample count.
    """
    contents = track_contents(spec)
    if len(contents) == 1:
        return [programme]
    channels = programme_channels(spec)
    layout = "stereo" if len(channels) == 2 else "5.1"
    # Whole-programme tracks and silent ones each take a branch; one channelsplit serves every
    # mono track that carries a programme channel, one branch per copy.
    copies = max(contents.count((name,)) for name in channels)
    uses = sum(1 for content in contents if len(content) > 1 or content[0] is None) + copies
    branches = iter(programme.filter_multi_output("asplit", uses)[number] for number in range(uses))
    splits = [next(branches).filter_multi_output("channelsplit", channel_layout=layout) for _ in range(copies)]
    taken = dict.fromkeys(channels, 0)
    tracks = []
    for content in contents:
        if content == channels:
            tracks.append(next(branches))
        elif all(name is None for name in content):
            mono = len(content) == 1
            tracks.append(next(branches).filter("aeval", exprs="0" if mono else "0|0",
                                                channel_layout="mono" if mono else "stereo"))
        else:
            name = content[0]
            tracks.append(splits[taken[name]][channels.index(name)])
            taken[name] += 1
    return tracks


TRACK_FILTERS = ("asplit", "channelsplit", "aeval")
"""ffmpeg filters :func:`lay_out_tracks` uses."""
