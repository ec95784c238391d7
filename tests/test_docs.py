"""The reference documents stay true to the code: every job key, every command and option, every link."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from pipeline.errors import JobError
from pipeline.model.job import parse_job
from postprod.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _job_reference():
    spec = importlib.util.spec_from_file_location("job_reference", DOCS / "job_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", ["job-file.md", "presets.md"])
def test_key_references_list_every_key_of_the_schema(document):
    reference = _job_reference()
    assert reference.main(["--check"]) == 0, "docs/ is behind the schema: run docs/job_reference.py"
    model, top = reference.REFERENCES[DOCS / document]
    text = (DOCS / document).read_text()
    first_section: dict[type, str] = {}
    for path, section_model in reference.sections(model, top=top):
        first_section.setdefault(section_model, path)
    for section_model, path in first_section.items():
        section = text.split(f"### `{path}`\n", 1)[1].split("\n### ", 1)[0]
        for name, field in section_model.model_fields.items():
            assert f"| `{field.alias or name}` |" in section, f"{document}: {path}.{field.alias or name} missing"


def test_job_reference_example_is_a_valid_job(tmp_path):
    """The example parses; the only complaints are the files it names, which do not exist here."""
    example = re.search(r"```yaml\n(.*?)```", (DOCS / "job-file.md").read_text(), re.S).group(1)
    with pytest.raises(JobError) as raised:
        parse_job(yaml.safe_load(example), tmp_path)
    problems = str(raised.value).splitlines()[1:]
    assert problems and all(problem.endswith("not found") for problem in problems), problems


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_cli_reference_has_every_command_and_option():
    text = (DOCS / "cli.md").read_text()
    missing = []
    for name, parser in _subcommands().items():
        if f"### `{name}`\n" not in text:
            missing.append(f"command {name}")
            continue
        section = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help") and option not in section:
                    missing.append(f"{name} {option}")
    assert not missing, missing
    assert "--version" in text


def test_every_relative_link_in_the_documents_resolves():
    documents = [ROOT / "README.md", ROOT / "bench" / "README.md", *DOCS.glob("*.md")]
    broken = []
    for document in documents:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" not in target and not (document.parent / target).exists():
                broken.append(f"{document.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_readme_first_job_is_a_valid_job(tmp_path):
    first_job = re.search(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    job = parse_job(yaml.safe_load(first_job), tmp_path)
    assert [shot.source.name for shot in job.shots] == ["rooftop.mp4", "sunset.mp4"]
    assert [deliverable.preset for deliverable in job.deliverables] == ["web-h264-1080p", "tiktok-9x16"]
