"""The one atomic text writer: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import pytest

from pipeline.files import partial_path, write_text_atomically


def test_a_write_replaces_the_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    assert write_text_atomically(target, "new ünïcode\n") == target
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(target, "half written \udc80 never lands")
    assert target.read_text() == "old"
    assert not partial_path(target).exists()
