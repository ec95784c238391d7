"""Caption files: SRT, WebVTT and ASS read into exact cue times; broken cues named with file and line."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pipeline.model.captions import parse_ass, parse_srt, parse_webvtt, read_captions
from pipeline.errors import JobError

SRT = """1
00:00:00,500 --> 00:00:01,250
<i>Hello</i> there
second line

2
00:00:02,000 --> 00:00:03,000
{\\b1} stays literal
"""

VTT = """WEBVTT - a title

NOTE a comment
that spans lines

intro
00:00.500 --> 00:01.250 align:start position:10%
<v Ada>Hello &amp; welcome</v>

01:00:02.000 --> 01:00:03.000
<c.loud>Later</c> <00:00:02.500>on
"""

ASS = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize
Style: Default,Arial,20

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.50,0:00:01.25,Default,,0,0,0,,{\\i1}Hello,{\\i0} there\\Nsecond line
Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,not shown
Dialogue: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,literal \\{brace\\}
"""


def test_srt_cues_keep_exact_times_and_drop_markup():
    cues = parse_srt(SRT, "a.srt")
    assert [(cue.start_s, cue.end_s) for cue in cues] == [
        (Fraction(1, 2), Fraction(5, 4)), (Fraction(2), Fraction(3))
    ]
    assert cues[0].text == "Hello there\nsecond line"
    assert cues[1].text == "{\\b1} stays literal"


def test_webvtt_skips_notes_and_reads_hours_identifiers_and_entities():
    cues = parse_webvtt(VTT, "a.vtt")
    assert [(cue.start_s, cue.end_s) for cue in cues] == [
        (Fraction(1, 2), Fraction(5, 4)), (Fraction(3602), Fraction(3603))
    ]
    assert [cue.text for cue in cues] == ["Hello & welcome", "Later on"]


def test_ass_dialogue_text_keeps_commas_and_loses_override_blocks():
    cues = parse_ass(ASS, "a.ass")
    assert [(cue.start_s, cue.end_s) for cue in cues] == [
        (Fraction(1, 2), Fraction(5, 4)), (Fraction(2), Fraction(3))
    ]
    assert cues[0].text == "Hello, there\nsecond line"
    assert cues[1].text == "literal {brace}"


@pytest.mark.parametrize(
    ("suffix", "text", "expected"),
    [
        (".srt", "1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:03,000 -> 00:00:04,000\nbroken\n",
         r"bad\.srt: cue 2 \(line 5\): expected a timing line"),
        (".srt", "1\n00:00:03,000 --> 00:00:02,000\nbackwards\n",
         r"bad\.srt: cue 1 \(line 1\): ends at 2\.000 s, not after its start at 3\.000 s"),
        (".vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\n00:03.000 --> 00:0x.000\nbad\n",
         r"bad\.vtt: cue 2 \(line 6\): expected a timing line"),
        (".vtt", "1\n00:01.000 --> 00:02.000\nno header\n", r"bad\.vtt: not a WebVTT file"),
        (".ass", "[Events]\nFormat: Start, End, Text\nDialogue: 0:00:01.00,0:0x:02.00,hi\n",
         r"bad\.ass: cue 1 \(line 3\): end '0:0x:02\.00' is not H:MM:SS\.cc"),
        (".srt", "", r"bad\.srt: no captions found"),
        (".txt", "hello", r"unknown caption format '\.txt'"),
    ],
)
def test_broken_caption_files_name_the_file_and_cue(tmp_path, suffix, text, expected):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(JobError, match=expected):
        read_captions(path)
