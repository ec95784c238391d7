"""The QC report as one self-contained HTML page: contact sheet, loudness curve, waveform, checks.

Everything is inline (JPEG data URIs, SVG drawn here, one style block, no script), so the page
opens from a mail attachment or an archive with nothing to fetch. The page is the jinja2 template
``report.html.j2`` beside this module, with autoescape on: text from the reports never becomes markup.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np
from markupsafe import Markup

from pipeline.files import write_text_atomically
from pipeline.qc.report import QcReport, thumbnail_data_uri

CHART_WIDTH = 900
CHART_HEIGHT = 160
LOUDNESS_FLOOR_LUFS = -60.0
_COLOURS = {"pass": "#1b7f3b", "warn": "#b26a00", "fail": "#b3261e"}
_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-top:1px solid #ddd;padding-top:16px}
h3{font-size:14px;margin:16px 0 6px;color:#444}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;font-size:13px}
.sheet{display:flex;flex-wrap:wrap;gap:6px} .sheet figure{margin:0;font-size:11px;color:#555;text-align:center}
.sheet img{display:block;width:180px;height:auto;border:1px solid #ccc}
table{border-collapse:collapse;font-size:13px;background:#fff} td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f0f0f0} .meta{color:#555;font-size:13px}
svg{background:#fff;border:1px solid #ddd}
"""


def _polyline(times: np.ndarray, values: np.ndarray, duration: float, low: float, high: float, colour: str) -> str:
    finite = np.isfinite(values)
    if not finite.any() or duration <= 0:
        return ""
    x = times[finite] / duration * CHART_WIDTH
    y = CHART_HEIGHT - (np.clip(values[finite], low, high) - low) / (high - low) * CHART_HEIGHT
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'


def loudness_svg(report: QcReport) -> str:
    """Momentary and short-term loudness over time, with the target band."""
    if report.loudness is None:
        return "<p>No audio stream.</p>"
    measurement = report.loudness
    top = max(0.0, (measurement.momentary_max_lufs or LOUDNESS_FLOOR_LUFS) + 3)
    low, high = LOUDNESS_FLOOR_LUFS, top
    duration = max(report.duration_s, measurement.duration_s)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
             f'role="img" aria-label="loudness curve">']
    for level in range(int(low), int(high) + 1, 10):
        y = CHART_HEIGHT - (level - low) / (high - low) * CHART_HEIGHT
        parts.append(f'<line x1="0" x2="{CHART_WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="4" y="{y - 2:.1f}" font-size="10" fill="#888">{level} LUFS</text>')
    if report.correction is not None:
        target = report.correction.target
        for level, dash in ((target.target_lufs, ""), (target.target_lufs - target.tolerance, "4 3"),
                            (target.target_lufs + target.tolerance, "4 3")):
            y = CHART_HEIGHT - (level - low) / (high - low) * CHART_HEIGHT
            parts.append(f'<line x1="0" x2="{CHART_WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="#1b7f3b" '
                         f'stroke-dasharray="{dash}"/>')
    momentary_times = (np.arange(len(measurement.momentary_lufs)) + 4) * 0.1
    short_times = (np.arange(len(measurement.short_term_lufs)) + 30) * 0.1
    parts.append(_polyline(momentary_times, measurement.momentary_lufs, duration, low, high, "#8ab4f8"))
    parts.append(_polyline(short_times, measurement.short_term_lufs, duration, low, high, "#1a56c4"))
    parts.append("</svg>")
    return "".join(parts)


def waveform_svg(report: QcReport) -> str:
    """The sound's peak envelope (all channels), one column per pixel, scaled to its own peak."""
    envelope = report.waveform
    if envelope.shape[1] == 0:
        return "<p>No audio stream.</p>"
    peak = float(np.abs(envelope).max())
    envelope = envelope / peak if peak > 0 else envelope
    columns = min(CHART_WIDTH, envelope.shape[1])
    edges = np.linspace(0, envelope.shape[1], columns + 1).astype(int)
    middle = CHART_HEIGHT / 2
    path = []
    for column, (start, end) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        low = float(envelope[0, start:max(end, start + 1)].min())
        high = float(envelope[1, start:max(end, start + 1)].max())
        x = column / columns * CHART_WIDTH
        path.append(f"M{x:.1f} {middle - high * middle:.1f}V{middle - low * middle:.1f}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
            f'role="img" aria-label="waveform"><line x1="0" x2="{CHART_WIDTH}" y1="{middle}" y2="{middle}" '
            f'stroke="#ddd"/><path d="{"".join(path)}" stroke="#444" stroke-width="1"/></svg>')


FAULTS_SHOWN = 20
"""Fault timecodes listed per check; the rest are counted."""

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _check_rows(report: QcReport) -> list[dict]:
    rows = []
    for check in report.to_dict()["checks"]:
        faults = [f"{fault['start_tc']} - {fault['end_tc']}" for fault in check["faults"]]
        rows.append({
            "name": check["name"],
            "status": check["status"],
            "value": "" if check["value"] is None else f"{check['value']} {check['unit']}",
            "limit": check["limit"],
            "detail": check["detail"],
            "faults": faults[:FAULTS_SHOWN],
            "more_faults": max(0, len(faults) - FAULTS_SHOWN),
        })
    return rows


def _section(report: QcReport) -> dict:
    """What the template shows of one deliverable; text is escaped there, the SVG drawn here is not."""
    levels = report.loudness.to_dict() if report.loudness else {}
    return {
        "name": report.path.name,
        "status": report.status,
        "preset": report.preset,
        "policy": report.policy,
        "frame_count": report.frame_count,
        "frame_rate": report.frame_rate,
        "duration_s": report.duration_s,
        "levels": ", ".join(f"{key} {value}" for key, value in levels.items() if value is not None),
        "correction": report.correction.reason if report.correction is not None else None,
        "frames": [{"src": thumbnail_data_uri(jpeg), "timecode": report.timecode(at)} for at, jpeg in report.thumbnails],
        "checks": _check_rows(report),
        "loudness_svg": Markup(loudness_svg(report)),
        "waveform_svg": Markup(waveform_svg(report)),
    }


def render_html(title: str, reports: list[QcReport]) -> str:
    """One page for a job: a section per deliverable. Every text from the reports (file names,
    check details, a correction's reason) is escaped by the template's autoescape."""
    worst = max((report.status for report in reports), key=["pass", "warn", "fail"].index, default="pass")
    return _TEMPLATES.get_template("report.html.j2").render(
        title=title,
        style=Markup(_STYLE),
        colours=_COLOURS,
        worst=worst,
        made_utc=reports[0].created_utc if reports else "",
        sections=[_section(report) for report in reports],
    ) + "\n"


def write_html(title: str, reports: list[QcReport], path: Path) -> Path:
    """Write the page atomically (temporary name, then rename)."""
    return write_text_atomically(path, render_html(title, reports))
