"""Package version ordering per ecosystem, exactly as each package manager orders them.

A vulnerability matches when the installed version is below the fixed one, so a wrong ordering is a
missed or false finding: ``2.36-9+deb12u1`` vs ``2.36-9+deb12u10``, ``1.0~rc1`` vs ``1.0``, epochs,
``~bpo12+1`` backports and rpm's ``^`` snapshots all have to come out as dpkg and rpm say. The collector
compares about 200k pairs per matching run, so every parse is cached and deb/rpm/apk parse into plain
tuples that Python compares natively (about a microsecond per comparison, parsing included only once).

- ``deb``: dpkg's ``verrevcmp`` (lib/dpkg/version.c) turned into a tuple key; validation follows
  ``parseversion`` (lib/dpkg/parsehelp.c), and whatever dpkg reports as "bad syntax", warning or error,
  is :class:`InvalidVersion` here. python-debian agrees on the ordering but costs ~50 µs a comparison.
- ``rpm``: ``rpmvercmp`` (rpmio/rpmvercmp.c) as a tuple key, with the EVR split and the missing-release
  rule of ``rpm.labelCompare`` (a missing release sorts below any release).
- ``apk``: apk-tools' current rules (src/version.c, with ``~hash``) as a tuple key. univers uses Gentoo's
  rules instead: it rejects real Alpine versions (``_git``/``_svn``/``_cvs``/``_hg`` suffixes, ``006``) and
  orders some differently (``1.0`` vs ``1.00``, ``1.2`` vs ``1.2-r0``).
- ``pypi``: ``packaging`` (PEP 440); ``semver``/``npm``/``golang``: the ``semver`` library (strict
  SemVer 2.0.0; npm and Go allow a leading ``v``, Go also the ``v1``/``v1.2`` shorthands);
  ``maven``/``gem``/``nuget``: univers's implementations.

Pure: stdlib, packaging, semver and univers only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, total_ordering
from typing import Any

import semver
from packaging.version import InvalidVersion as _PepInvalid
from packaging.version import Version as _PepVersion
from univers import gem as _gem
from univers import maven as _maven
from univers import nuget as _nuget

CACHE_SIZE = 65536
MANAGER_ECOSYSTEM = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}
DPKG_EPOCH_MAX = 2**31 - 1  # INT_MAX: dpkg's "epoch in version is too big"

_WHITESPACE = re.compile(r"\s")
_DIGITS = re.compile(r"[0-9]+\Z")
_DEB_UPSTREAM_CHARS = re.compile(r"[A-Za-z0-9.+~-]*\Z")
_DEB_UPSTREAM_CHARS_EPOCH = re.compile(r"[A-Za-z0-9.+~:-]*\Z")
_DEB_REVISION_CHARS = re.compile(r"[A-Za-z0-9.+~]*\Z")
_DEB_PARTS = re.compile(r"([^0-9]*)([0-9]*)")
_RPM_TOKENS = re.compile(r"~|\^|[0-9]+|[A-Za-z]+")
_GO_SHORT = re.compile(r"v?([0-9]+)(?:\.([0-9]+))?\Z")


class InvalidVersion(ValueError):
    """A version string that its ecosystem's package manager would not accept."""

    def __init__(self, ecosystem: str, version: str, reason: str) -> None:
        shown = version if len(version) <= 100 else version[:100] + "…"
        super().__init__(f"invalid {ecosystem} version {shown!r}: {reason}")
        self.ecosystem = ecosystem
        self.version = version
        self.reason = reason


@total_ordering
class LibraryKey:
    """Sort key around a library version object that only promises ``<`` and ``==``; for ordering, not hashing."""

    __slots__ = ("value",)
    __hash__ = None  # type: ignore[assignment]  # equal versions may have different spellings

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LibraryKey):
            return NotImplemented
        return not (self.value < other.value or other.value < self.value)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, LibraryKey):
            return NotImplemented
        return bool(self.value < other.value)


# --- deb ---------------------------------------------------------------------------------------------

def _deb_order(char: str) -> int:
    """dpkg's ``order()``: '~' before the end of a part, the end before letters, letters before the rest."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _deb_part_key(part: str) -> tuple[Any, ...]:
    """``verrevcmp`` as a tuple: alternating non-digit runs (as order() values ending in 0) and integers.

    The trailing ``(0,)`` stands for the end of the string, which dpkg compares as an empty non-digit run:
    above a following '~', below anything else.
    """
    key: list[Any] = []
    for index, (text, number) in enumerate(_DEB_PARTS.findall(part)):
        if index and not text and not number:  # findall's trailing empty match; "" itself is ("", 0)
            continue
        key.append((*(_deb_order(c) for c in text), 0))
        key.append(int(number) if number else 0)
    key.append((0,))
    return tuple(key)


def _deb_parse(version: str) -> tuple[int, tuple[Any, ...], tuple[Any, ...]]:
    """Split and check like dpkg's parseversion; see the module docstring."""
    epoch = 0
    rest = version
    has_epoch = ":" in version  # dpkg reads any ':' as the end of an epoch
    if has_epoch:
        epoch_text, _, rest = version.partition(":")
        if not epoch_text:
            raise InvalidVersion("deb", version, "epoch in version is empty")
        if not _DIGITS.match(epoch_text):
            raise InvalidVersion("deb", version, "epoch in version is not number")
        epoch = int(epoch_text)
        if epoch > DPKG_EPOCH_MAX:
            raise InvalidVersion("deb", version, "epoch in version is too big")
        if not rest:
            raise InvalidVersion("deb", version, "nothing after colon in version number")
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        raise InvalidVersion("deb", version, "revision number is empty")
    if not upstream:
        raise InvalidVersion("deb", version, "upstream version is empty")
    if not upstream[0].isascii() or not upstream[0].isdigit():
        raise InvalidVersion("deb", version, "version number does not start with digit")
    allowed = _DEB_UPSTREAM_CHARS_EPOCH if has_epoch else _DEB_UPSTREAM_CHARS  # ':' only after an epoch
    if not allowed.match(upstream):
        raise InvalidVersion("deb", version, "invalid character in version number")
    if not _DEB_REVISION_CHARS.match(revision):
        raise InvalidVersion("deb", version, "invalid character in revision number")
    return epoch, _deb_part_key(upstream), _deb_part_key(revision)


# --- rpm ---------------------------------------------------------------------------------------------

# rpmvercmp token ranks: '~' < end of string < '^' < letters < digits (a run of letters vs digits: digits win).
_RPM_TILDE, _RPM_END, _RPM_CARET, _RPM_ALPHA, _RPM_NUM = range(5)


def _rpm_vr_key(text: str) -> tuple[Any, ...]:
    """``rpmvercmp`` as a tuple of (rank, value) pairs; other characters only separate runs."""
    key: list[Any] = []
    for token in _RPM_TOKENS.findall(text):
        if token == "~":
            key += (_RPM_TILDE, 0)
        elif token == "^":
            key += (_RPM_CARET, 0)
        elif token[0].isdigit():
            key += (_RPM_NUM, int(token))
        else:
            key += (_RPM_ALPHA, token)
    key += (_RPM_END, 0)
    return tuple(key)


def _rpm_parse(version: str) -> tuple[int, tuple[Any, ...], tuple[Any, ...]]:
    """``[epoch:]version[-release]``, split like rpm's parseEVR (release after the last '-')."""
    epoch = 0
    rest = version
    if ":" in version:
        epoch_text, _, rest = version.partition(":")
        if not _DIGITS.match(epoch_text):
            raise InvalidVersion("rpm", version, "epoch is not a non-negative integer")
        epoch = int(epoch_text)
    upstream, hyphen, release = rest.rpartition("-")
    if not hyphen:
        upstream, release = rest, ""
    elif not release:
        raise InvalidVersion("rpm", version, "release after '-' is empty")
    if not upstream:
        raise InvalidVersion("rpm", version, "version part is empty")
    # labelCompare: a missing release (None) sorts below every present one, whatever it holds.
    release_key = (1, _rpm_vr_key(release)) if hyphen else (0,)
    return epoch, _rpm_vr_key(upstream), release_key


# --- apk ---------------------------------------------------------------------------------------------

# apk-tools (src/version.c, the tokeniser with ``~hash``): digit{.digit}...{letter}{_suffix{N}}...{~hash}{-rN}.
# Two versions compare token by token; where the token types differ, a pre-release suffix loses, and
# otherwise the version that goes on with the *earlier* kind of token is newer (1.2.1 > 1.2a > 1.2_p1 >
# 1.2-r1 > 1.2). That is a plain tuple key once each token carries a rank for that rule.
_APK_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_APK_SUFFIX_NONE = 5  # below: pre-release suffixes
_APK_INITIAL, _APK_DIGIT, _APK_LETTER, _APK_SUFFIX, _APK_SUFFIX_NO, _APK_HASH, _APK_REVISION, _APK_END = range(8)
_APK_PRE_RANK = -1  # a pre-release suffix sorts below everything, even the end of the version
_APK_TOKEN = re.compile(r"(\.?)([0-9]+)|([a-z])|_([a-z]*)|~([0-9A-Fa-f]+)|-r([0-9]+)")


def _apk_rank(token: int) -> int:
    return _APK_END - token  # END 0, revision 1, hash 2, suffix number 3, suffix 4, letter 5, digit 6, first 7


def _apk_key(version: str) -> tuple[Any, ...] | str:
    """The tuple key of an Alpine version, or the reason apk-tools rejects it."""
    key: list[Any] = []
    prev = -1
    pos = 0
    while pos < len(version):
        match = _APK_TOKEN.match(version, pos)
        if match is None:
            return f"unexpected {version[pos]!r} at offset {pos}"
        dot, digits, letter, suffix, commit, revision = match.groups()
        if prev == -1 and (digits is None or dot):
            return "does not start with a digit"
        if digits is not None:
            token = _APK_INITIAL if prev == -1 else _APK_SUFFIX_NO if prev == _APK_SUFFIX and not dot else _APK_DIGIT
            if token == _APK_DIGIT and prev not in (_APK_INITIAL, _APK_DIGIT):
                return f"digits not allowed at offset {pos}"
            # After a dot, a leading zero makes apk compare the digits as a string; a string starting with '0'
            # sorts below any number that does not, so (0, text) / (1, number) keeps one total order.
            value: Any = ((0, digits) if digits[0] == "0" else (1, int(digits))) if token == _APK_DIGIT else int(digits)
        elif letter is not None:
            token, value = _APK_LETTER, ord(letter)
            if prev not in (_APK_INITIAL, _APK_DIGIT):
                return f"letter {letter!r} not allowed at offset {pos}"
        elif suffix is not None:
            token, value = _APK_SUFFIX, _APK_SUFFIXES.get(suffix)
            if value is None:
                return f"unknown suffix '_{suffix}'"
            if prev > _APK_SUFFIX_NO:
                return f"suffix '_{suffix}' not allowed after a commit hash or revision"
        elif commit is not None:
            token, value = _APK_HASH, commit
            if prev >= _APK_HASH:
                return "commit hash not allowed here"
        else:
            token, value = _APK_REVISION, int(revision)
            if prev >= _APK_REVISION:
                return "second revision"
        rank = _APK_PRE_RANK if token == _APK_SUFFIX and value < _APK_SUFFIX_NONE else _apk_rank(token)
        key += (rank, value)
        prev = token
        pos = match.end()
    key += (_apk_rank(_APK_END), 0)
    return tuple(key)


# --- the rest ----------------------------------------------------------------------------------------

def _pypi_parse(version: str) -> _PepVersion:
    try:
        return _PepVersion(version)
    except _PepInvalid as exc:
        raise InvalidVersion("pypi", version, f"not a PEP 440 version ({exc})") from None


def _semver_key(parsed: semver.Version) -> tuple[Any, ...]:
    """SemVer 2.0.0 §11 precedence as a tuple; build metadata is ignored, as the spec says."""
    if parsed.prerelease is None:
        pre: tuple[Any, ...] = (1,)
    else:
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parsed.prerelease.split("."))
        pre = (0, ids)
    return parsed.major, parsed.minor, parsed.patch, pre


def _semver_strict(ecosystem: str, version: str, text: str) -> tuple[Any, ...]:
    try:
        return _semver_key(semver.Version.parse(text))
    except ValueError as exc:
        raise InvalidVersion(ecosystem, version, f"not a SemVer 2.0.0 version ({exc})") from None


def _semver_parse(version: str) -> tuple[Any, ...]:
    return _semver_strict("semver", version, version)


def _npm_parse(version: str) -> tuple[Any, ...]:
    """node-semver's ``valid()``: strict SemVer after an optional leading ``v`` or ``=``."""
    text = version[1:] if version[:1] in ("v", "=") else version
    return _semver_strict("npm", version, text)


def _golang_parse(version: str) -> tuple[Any, ...]:
    """Go module versions (golang.org/x/mod/semver): SemVer with ``v``; ``v1`` and ``v1.2`` mean ``.0``."""
    short = _GO_SHORT.match(version)
    text = version[1:] if version.startswith("v") else version
    if short:
        text = f"{short.group(1)}.{short.group(2) or 0}.0"
    return _semver_strict("golang", version, text)


def _apk_parse(version: str) -> tuple[Any, ...]:
    key = _apk_key(version)
    if isinstance(key, str):
        raise InvalidVersion("apk", version, f"{key} (apk expects digits.digits[letter][_suffixN]...[~hash][-rN])")
    return key


def _maven_parse(version: str) -> LibraryKey:
    return LibraryKey(_maven.Version(version))


def _gem_parse(version: str) -> LibraryKey:
    try:
        return LibraryKey(_gem.GemVersion(version))
    except ValueError:
        raise InvalidVersion("gem", version, "not a RubyGems version (digits then .segments, optional -pre)") from None


def _nuget_parse(version: str) -> LibraryKey:
    try:
        return LibraryKey(_nuget.Version.from_string(version))
    except (ValueError, _nuget.InvalidNuGetVersion) as exc:
        raise InvalidVersion("nuget", version, f"not a NuGet version ({exc})") from None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "deb": _deb_parse,
    "rpm": _rpm_parse,
    "apk": _apk_parse,
    "pypi": _pypi_parse,
    "semver": _semver_parse,
    "npm": _npm_parse,
    "maven": _maven_parse,
    "gem": _gem_parse,
    "golang": _golang_parse,
    "nuget": _nuget_parse,
}
ECOSYSTEMS: frozenset[str] = frozenset(_PARSERS)


# --- public API --------------------------------------------------------------------------------------

@lru_cache(maxsize=CACHE_SIZE)
def _key(ecosystem: str, version: str) -> Any:
    parser = _PARSERS.get(ecosystem)
    if parser is None:
        raise ValueError(f"unknown version ecosystem {ecosystem!r}; valid: {', '.join(sorted(ECOSYSTEMS))}")
    if not isinstance(version, str):
        raise InvalidVersion(ecosystem, repr(version), f"expected a string, got {type(version).__name__}")
    if not version:
        raise InvalidVersion(ecosystem, version, "version string is empty")
    if _WHITESPACE.search(version):
        raise InvalidVersion(ecosystem, version, "version string contains whitespace")
    return parser(version)


def version_key(ecosystem: str, version: str) -> Any:
    """A cached sort key: ``version_key(e, a) < version_key(e, b)`` iff ``compare_versions(e, a, b) == -1``.

    Keys of one ecosystem compare with each other only; deb/rpm/semver/npm/golang keys are plain tuples.
    """
    return _key(ecosystem, version)


def validate_version(ecosystem: str, version: str) -> None:
    """Raise :class:`InvalidVersion` (or ValueError for an unknown ecosystem) unless ``version`` parses."""
    _key(ecosystem, version)


def compare_versions(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, level with, or after ``b`` in ``ecosystem``."""
    key_a = _key(ecosystem, a)
    key_b = _key(ecosystem, b)
    if key_a < key_b:
        return -1
    if key_b < key_a:
        return 1
    return 0


def ecosystem_for_manager(manager: str) -> str:
    """The version ecosystem of an inventory package manager: ``dpkg`` → ``deb``, ``rpm`` → ``rpm``, ``apk``."""
    try:
        return MANAGER_ECOSYSTEM[manager]
    except KeyError:
        known = ", ".join(sorted(MANAGER_ECOSYSTEM))
        raise ValueError(f"unknown package manager {manager!r}; known: {known}") from None
