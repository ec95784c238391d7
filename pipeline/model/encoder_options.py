"""Which encoder options a preset or a job's overrides may pass to ffmpeg, and what values they take.

Options are passed as ``-KEY:v VALUE``, and ffmpeg reads that as any output option, not only the
encoder's: ``pass``/``passlogfile``/``stats`` write files where the service user can,
``x264-params: "stats=/x"`` does the same from inside one option, ``filter_script`` reads a file,
``dump_attachment`` writes one. So an option is passed only when it is on its encoder's allow-list
(or the short list every encoder may take), and its value has the shape that option takes:
numbers in a range, a word from a list, a bitrate, or, for the ``*-params`` strings, ``key=value``
pairs whose keys are themselves allow-listed and whose values are plain words or numbers (never a
path: no ``/``, ``\\``, ``~`` or ``:`` inside a value). Anything else fails validation naming the
option.
"""

from __future__ import annotations

import re
from collections.abc import Callable

OptionValue = str | int | float
Check = Callable[[OptionValue], str | None]
"""Returns None for a good value, else what is wrong with it."""

_WORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")
_BITRATE = re.compile(r"^[0-9]+(\.[0-9]+)?[kKmMgG]?$")
_FLAGS = re.compile(r"^([+-]?[a-z0-9_]+)+$")
_PARAM_VALUE = re.compile(r"^[A-Za-z0-9_.,+-]{1,64}$")


def _number(low: float, high: float, integer: bool = False) -> Check:
    def check(value: OptionValue) -> str | None:
        try:
            number = float(value) if not integer else int(str(value))
        except ValueError:
            return f"expected {'a whole number' if integer else 'a number'} from {low:g} to {high:g}"
        if not low <= number <= high:
            return f"expected {low:g} to {high:g}"
        return None
    return check


def _one_of(*choices: str) -> Check:
    def check(value: OptionValue) -> str | None:
        return None if str(value) in choices else f"expected one of {', '.join(choices)}"
    return check


def _pattern(expression: re.Pattern, description: str) -> Check:
    def check(value: OptionValue) -> str | None:
        return None if expression.match(str(value)) else f"expected {description}"
    return check


def _params(allowed_keys: frozenset[str]) -> Check:
    """A ``key=value:key=value`` string (x264/x265/SVT-AV1 params) with allow-listed keys."""
    def check(value: OptionValue) -> str | None:
        for pair in str(value).split(":"):
            key, has_value, item = pair.partition("=")
            if key not in allowed_keys:
                return f"{key!r} is not an allowed key (allowed: {', '.join(sorted(allowed_keys))})"
            if has_value and not _PARAM_VALUE.match(item):
                return f"the value of {key!r} must be a plain word or number"
        return None
    return check


_word = _pattern(_WORD, "a plain word or number")
_bitrate = _pattern(_BITRATE, "a bitrate such as 8M or 256k")

COMMON_OPTIONS: dict[str, Check] = {
    "b": _bitrate, "maxrate": _bitrate, "minrate": _bitrate, "bufsize": _bitrate,
    "g": _number(1, 10_000, integer=True), "bf": _number(0, 16, integer=True),
    "threads": _number(0, 256, integer=True),
    "flags": _pattern(_FLAGS, "flags such as +cgop"),
}
"""Options any encoder may take."""

_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                 "veryslow", "placebo")
_X264_PARAMS = frozenset({
    "keyint", "min-keyint", "scenecut", "bframes", "b-adapt", "b-pyramid", "ref", "rc-lookahead",
    "aq-mode", "aq-strength", "psy-rd", "deblock", "nal-hrd", "vbv-maxrate", "vbv-bufsize",
    "open-gop", "force-cfr", "colorprim", "transfer", "colormatrix", "chromaloc", "level", "slices",
    "no-scenecut", "weightp", "me", "subme", "trellis", "fast-pskip", "mbtree", "no-mbtree",
})
_X265_PARAMS = frozenset({
    "log-level", "keyint", "min-keyint", "scenecut", "no-scenecut", "bframes", "ref", "rc-lookahead",
    "aq-mode", "aq-strength", "psy-rd", "vbv-maxrate", "vbv-bufsize", "open-gop", "no-open-gop",
    "hdr-opt", "hdr10-opt", "repeat-headers", "colorprim", "transfer", "colormatrix", "chromaloc",
    "range", "level-idc", "high-tier", "hrd", "aud", "strict-cbr", "max-cll", "sao", "no-sao",
    "deblock", "frame-threads", "pools", "wpp", "no-wpp",
})
_SVTAV1_PARAMS = frozenset({
    "enable-overlays", "tune", "film-grain", "film-grain-denoise", "enable-qm", "qm-min", "qm-max",
    "keyint", "scd", "lookahead", "enable-tf", "fast-decode", "irefresh-type", "enable-variance-boost",
    "variance-boost-strength", "sharpness", "color-primaries", "transfer-characteristics",
    "matrix-coefficients", "color-range", "mastering-display", "content-light",
})
_PRORES_PROFILES = ("0", "1", "2", "3", "4", "5", "proxy", "lt", "standard", "hq", "4444", "4444xq")
_vendor = _pattern(re.compile(r"^[A-Za-z0-9]{4}$"), "four letters or digits (e.g. apl0)")

ENCODER_OPTIONS: dict[str, dict[str, Check]] = {
    "libx264": {
        "preset": _one_of(*_X26X_PRESETS), "tune": _one_of("film", "animation", "grain", "stillimage",
                                                           "fastdecode", "zerolatency", "psnr", "ssim"),
        "crf": _number(0, 51), "qp": _number(0, 81, integer=True),
        "profile": _one_of("baseline", "main", "high", "high10", "high422", "high444"),
        "level": _pattern(re.compile(r"^[1-6](\.[0-9])?$|^[1-6][0-9]?$"), "a level such as 4.1"),
        "x264-params": _params(_X264_PARAMS), "sc_threshold": _number(-1, 100, integer=True),
        "keyint_min": _number(1, 10_000, integer=True), "refs": _number(1, 16, integer=True),
    },
    "libx265": {
        "preset": _one_of(*_X26X_PRESETS), "tune": _one_of("psnr", "ssim", "grain", "zerolatency",
                                                           "fastdecode", "animation"),
        "crf": _number(0, 51), "qp": _number(0, 69, integer=True),
        "profile": _one_of("main", "main10", "main12", "main422-10", "main444-8", "main444-10", "mainstillpicture"),
        "x265-params": _params(_X265_PARAMS),
    },
    "libsvtav1": {
        "preset": _number(-1, 13, integer=True), "crf": _number(0, 63, integer=True),
        "svtav1-params": _params(_SVTAV1_PARAMS),
    },
    "prores_ks": {
        "profile": _one_of(*_PRORES_PROFILES), "vendor": _vendor, "alpha_bits": _one_of("0", "8", "16"),
        "bits_per_mb": _number(0, 8192, integer=True), "mbs_per_slice": _one_of("1", "2", "4", "8"),
        "quant_mat": _one_of("auto", "default", "proxy", "lt", "standard", "hq"),
    },
    "prores_aw": {"profile": _one_of(*_PRORES_PROFILES), "vendor": _vendor},
    "dnxhd": {"profile": _one_of("dnxhd", "dnxhr_lb", "dnxhr_sq", "dnxhr_hq", "dnxhr_hqx", "dnxhr_444")},
    # XDCAM HD422 (presets/xdcam-hd422-*.yaml): MPEG-2 4:2:2 profile at high level, fixed long GOP.
    "mpeg2video": {
        "profile": _number(0, 5, integer=True), "level": _number(2, 10, integer=True),
        "sc_threshold": _number(-1_000_000_000, 1_000_000_000, integer=True),
        "rc_init_occupancy": _number(0, 1_000_000_000, integer=True),
        "intra_vlc": _number(0, 1, integer=True), "non_linear_quant": _number(0, 1, integer=True),
        "intra_dc_precision": _number(0, 3, integer=True),
        "qmin": _number(1, 31, integer=True), "qmax": _number(1, 31, integer=True),
    },
    "aac": {"profile": _one_of("aac_low", "aac_main", "aac_ltp"), "aac_coder": _one_of("anmr", "twoloop", "fast"),
            "cutoff": _number(0, 48_000, integer=True)},
}
"""Options each known encoder may take, beyond :data:`COMMON_OPTIONS`; an encoder not listed (a
user preset's ``h264_nvenc``, say) may take the common ones only."""


def check_encoder_options(encoder: str, options: dict[str, OptionValue]) -> list[str]:
    """What is wrong with ``options`` for ``encoder``: one line per bad option, naming it."""
    allowed = {**COMMON_OPTIONS, **ENCODER_OPTIONS.get(encoder, {})}
    problems = []
    for key, value in options.items():
        check = allowed.get(key)
        if check is None:
            problems.append(f"options.{key}: not an option postprod passes to {encoder} "
                            f"(allowed: {', '.join(sorted(allowed))})")
            continue
        if isinstance(value, bool):
            problems.append(f"options.{key}: expected a number or a word, not {value}")
            continue
        problem = check(value)
        if problem is not None:
            problems.append(f"options.{key}: {value!r} is not allowed: {problem}")
    return problems
