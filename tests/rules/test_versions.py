"""Version ordering checked against the real package managers: dpkg for deb, python3-rpm for rpm.

Thousands of pairs come from a seeded generator (deterministic), half of them near-misses of each other
(one edit apart), so tildes, carets, leading zeros, letters against digits and missing revisions all meet.
``import rpm`` failing is a failure, not a skip: CI installs python3-rpm.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from itertools import pairwise

import pytest

from rules import versions
from rules.versions import InvalidVersion, compare_versions, validate_version, version_key

DEB_PAIRS = 3000
RPM_PAIRS = 20000
RELATION = {-1: "lt", 0: "eq", 1: "gt"}


# --- generators ---------------------------------------------------------------------------------------

def _run(rng: random.Random, alphabet: list[str], size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, size)))


DEB_PIECES = ["0", "1", "2", "9", "10", "01", "00", "123", "a", "b", "z", "A", "rc", "deb", "u", "bpo", "git",
              ".", ".", ".", "+", "~", "~", "-"]
DEB_REV_PIECES = [p for p in DEB_PIECES if p != "-"]


def _deb_version(rng: random.Random) -> str:
    epoch = f"{rng.choice(['0', '1', '2', '10', '01'])}:" if rng.random() < 0.25 else ""
    upstream = rng.choice(["0", "1", "2", "10", "1.0", "2.36", "1.2.3"]) + _run(rng, DEB_PIECES, 5)
    if epoch and rng.random() < 0.1:
        upstream += ":1"
    revision = (_run(rng, DEB_REV_PIECES, 4) or "1") if rng.random() < 0.7 else ""
    # A '-' in upstream without a revision makes what follows it the revision, as dpkg would read it.
    return epoch + upstream + (f"-{revision}" if revision else "")


def _mutate(rng: random.Random, version: str, pieces: list[str]) -> str:
    """One small edit, so the pair agrees on a long prefix and the interesting rules decide."""
    pos = rng.randint(1, len(version))
    edit = rng.randrange(4)
    if edit == 0:
        return version[:pos] + rng.choice(pieces) + version[pos:]
    if edit == 1:
        return version[:pos - 1] + rng.choice(pieces) + version[pos:]
    if edit == 2 and len(version) > 1:
        return version[:pos - 1] + version[pos:]
    return version + rng.choice(pieces)


def _valid_pairs(ecosystem: str, make, pieces: list[str], count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        a = make(rng)
        b = _mutate(rng, a, pieces) if rng.random() < 0.5 else make(rng)
        if rng.random() < 0.05:
            b = a
        try:
            validate_version(ecosystem, a)
            validate_version(ecosystem, b)
        except InvalidVersion:
            continue
        pairs.append((a, b))
    return pairs


# --- deb against dpkg --------------------------------------------------------------------------------

def _dpkg() -> str:
    path = shutil.which("dpkg")
    assert path, "dpkg is required for the deb oracle"
    return path


def _dpkg_confirms(pairs: list[tuple[str, str, str]]) -> tuple[list[int], str]:
    """One ``dpkg --compare-versions A REL B`` per pair in one shell; exit codes (0 = dpkg agrees) and stderr."""
    dpkg = _dpkg()
    script = "".join(f"{dpkg} --compare-versions '{a}' {rel} '{b}'; echo $?\n" for a, rel, b in pairs)
    done = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True, timeout=120)
    return [int(line) for line in done.stdout.split()], done.stderr


TRICKY_DEB = [
    ("1:1.2-1", "1.3-1", 1),
    ("1.0~rc1-1", "1.0-1", -1),
    ("2.36-9+deb12u1", "2.36-9+deb12u10", -1),
    ("2.36-9+deb12u9", "2.36-9+deb12u10", -1),
    ("1.2.3-1~bpo12+1", "1.2.3-1", -1),
    ("1.2.3-1~bpo12+1", "1.2.2-5", 1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1),
    ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", 1),
    ("1.0-1", "1.0-1.1", -1),
    ("1.0", "1.0-0", 0),
    ("1.0", "1.0-1", -1),
    ("0:1.0-1", "1.0-1", 0),
    ("1.0~", "1.0", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0~~a", "1.0~~", 1),
    ("1.0a", "1.0", 1),
    ("1.0+", "1.0a", 1),
    ("1.0.0", "1.0", 1),
    ("1.01", "1.1", 0),
    ("1.0-a-1", "1.0-1", 1),
    ("2:1.0", "1:9.9", 1),
    ("1:2:3-1", "1:2:3-1", 0),
    ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1),
    ("1.18.0-6.1+b1", "1.18.0-6.1", 1),
    ("4.19.0-26", "4.19.0-26+b1", -1),
]


def test_tricky_deb_pairs_match_dpkg():
    ours = [(a, RELATION[compare_versions("deb", a, b)], b) for a, b, _ in TRICKY_DEB]
    for (a, rel, b), (_, _, expected) in zip(ours, TRICKY_DEB, strict=True):
        assert rel == RELATION[expected], (a, b)
    codes, stderr = _dpkg_confirms(ours)
    assert stderr == ""
    assert codes == [0] * len(ours), [p for p, c in zip(ours, codes, strict=True) if c]


def test_generated_deb_pairs_match_dpkg():
    pairs = _valid_pairs("deb", _deb_version, DEB_PIECES, DEB_PAIRS, seed=20261122)
    claims = [(a, RELATION[compare_versions("deb", a, b)], b) for a, b in pairs]
    assert {rel for _, rel, _ in claims} == {"lt", "eq", "gt"}
    assert sum(1 for a, _, _ in claims if "~" in a) > DEB_PAIRS // 10
    assert sum(1 for a, _, _ in claims if ":" in a) > DEB_PAIRS // 10
    codes, stderr = _dpkg_confirms(claims)
    assert stderr == "", "dpkg warned about a version we accepted"
    wrong = [p for p, c in zip(claims, codes, strict=True) if c != 0]
    assert not wrong, f"{len(wrong)} disagreements with dpkg, e.g. {wrong[:5]}"


def test_deb_sort_key_orders_like_compare():
    pairs = _valid_pairs("deb", _deb_version, DEB_PIECES, 2000, seed=7)
    everything = sorted({v for pair in pairs for v in pair}, key=lambda v: version_key("deb", v))
    for a, b in pairwise(everything):
        assert compare_versions("deb", a, b) in (-1, 0)
    for a, b in pairs:
        ka, kb = version_key("deb", a), version_key("deb", b)
        assert (ka < kb, ka == kb, ka > kb) == tuple(compare_versions("deb", a, b) == r for r in (-1, 0, 1))


# dpkg --compare-versions calls each of these "bad syntax" (error or warning).
INVALID_DEB = {
    "1 0": "whitespace",
    "1.0-1 2": "whitespace",
    "a1.0": "does not start with digit",
    ".1": "does not start with digit",
    "~1": "does not start with digit",
    "1.0-": "revision number is empty",
    "-1": "upstream version is empty",
    "1:-1": "upstream version is empty",
    "x:1.0": "epoch in version is not number",
    "1a:1.0": "epoch in version is not number",
    "-1:1.0": "epoch in version is not number",
    "99999999999:1.0": "epoch in version is too big",
    "2147483648:1.0": "epoch in version is too big",
    "1:": "nothing after colon",
    "1.0_1": "invalid character in version number",
    "1.0:1": "epoch in version is not number",
    "1.0-1_2": "invalid character in revision number",
    "1.0-1:2": "epoch in version is not number",
    "1.0-1-": "revision number is empty",
    "1.0é": "invalid character in version number",
    "1.0-1/2": "invalid character in revision number",
}


@pytest.mark.parametrize(("version", "reason"), sorted(INVALID_DEB.items()))
def test_invalid_deb_versions_are_rejected_with_the_reason(version, reason):
    with pytest.raises(InvalidVersion) as caught:
        validate_version("deb", version)
    message = str(caught.value)
    assert "deb" in message and repr(version) in message
    assert reason in message


def test_dpkg_also_calls_our_invalid_deb_versions_bad_syntax():
    dpkg = _dpkg()
    for version in INVALID_DEB:
        done = subprocess.run([dpkg, "--compare-versions", "--", version, "lt", "1.0"], capture_output=True,
                              text=True, timeout=10)
        assert "bad syntax" in done.stderr, (version, done.stderr)


@pytest.mark.parametrize("version", ["", " 1.0", "1.0 ", "\t1.0", "+1:1.0", "1.0\n"])
def test_deb_is_stricter_than_dpkg_on_blank_and_signed_input(version):
    # dpkg trims blanks and lets strtol take "+1"; a collector-stored version never should carry either.
    with pytest.raises(InvalidVersion):
        validate_version("deb", version)


def test_deb_accepts_what_dpkg_accepts():
    for version in ["0", "1:1.0", "1.0-1", "1.0-a-b", "1:2:3-1", "1.0+dfsg~rc1-0ubuntu1~22.04.1", "2147483647:1",
                    "9base", "1.2.3-1~bpo12+1", "0001:1"]:
        validate_version("deb", version)


# --- rpm against python3-rpm -------------------------------------------------------------------------

RPM_PIECES = ["0", "1", "2", "9", "10", "01", "00", "123", "a", "b", "z", "A", "rc", "el", "git", "fc",
              ".", ".", ".", "_", "+", "~", "~", "^", "^", "é"]


def _rpm_module():
    import rpm  # a failure here must fail the test, never skip it

    return rpm


def _rpm_evr(rng: random.Random) -> tuple[str | None, str, str | None]:
    epoch = rng.choice(["0", "1", "2", "10", "01"]) if rng.random() < 0.25 else None
    version = rng.choice(["0", "1", "1.0", "2.36", "5.14.0", "a", "~1", "^1"]) + _run(rng, RPM_PIECES, 5)
    release = (rng.choice(["1", "1.el9", "362.8.1.el9_3", "0.rc1", "~1"]) + _run(rng, RPM_PIECES, 3)
               if rng.random() < 0.8 else None)
    return epoch, version, release


def _evr_string(evr: tuple[str | None, str, str | None]) -> str:
    epoch, version, release = evr
    return (f"{epoch}:" if epoch is not None else "") + version + (f"-{release}" if release is not None else "")


def _rpm_mutate(rng: random.Random, evr: tuple[str | None, str, str | None]) -> tuple[str | None, str, str | None]:
    epoch, version, release = evr
    which = rng.randrange(4)
    if which == 0:
        return (None if epoch else "0") if rng.random() < 0.5 else "1", version, release
    if which == 1 or release is None:
        return epoch, _mutate(rng, version, RPM_PIECES), release
    if which == 2:
        return epoch, version, None
    return epoch, version, _mutate(rng, release, RPM_PIECES)


TRICKY_RPM = [
    ("1.0^git1", "1.0", 1),
    ("1.0^git1", "1.0.1", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("2:1.0-1.el9", "1:9.9-1.el9", 1),
    ("5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3", -1),
    ("1.0-1", "1.0-1.el9", -1),
    ("0:1.0-1", "1.0-1", 0),
    ("1.0", "1.0-1", -1),
    ("1.01", "1.1", 0),
    ("1.0a", "1.0", 1),
    ("1.a", "1.1", -1),
    ("1_0", "1.0", 0),
    ("3.0.7-27.el9", "3.0.7-24.el9", 1),
    ("1.2.3-1.el8_10", "1.2.3-1.el8_9", 1),
]


def _split_evr(text: str) -> tuple[str | None, str, str | None]:
    epoch, colon, rest = text.partition(":")
    if not colon:
        epoch, rest = None, text
    version, hyphen, release = rest.rpartition("-")
    return (epoch, version, release) if hyphen else (epoch, rest, None)


def test_tricky_rpm_pairs_match_rpm_label_compare():
    rpm = _rpm_module()
    for a, b, expected in TRICKY_RPM:
        assert compare_versions("rpm", a, b) == expected, (a, b)
        assert rpm.labelCompare(_split_evr(a), _split_evr(b)) == expected, (a, b)


def test_generated_rpm_pairs_match_rpm_label_compare():
    rpm = _rpm_module()
    rng = random.Random(20261122)
    seen = set()
    checked = 0
    while checked < RPM_PAIRS:
        a = _rpm_evr(rng)
        b = _rpm_mutate(rng, a) if rng.random() < 0.6 else _rpm_evr(rng)
        ours = compare_versions("rpm", _evr_string(a), _evr_string(b))
        theirs = rpm.labelCompare(a, b)
        assert ours == theirs, (a, b, ours, theirs)
        seen.add(ours)
        checked += 1
    assert seen == {-1, 0, 1}


def test_rpm_sort_key_orders_like_label_compare():
    import functools

    rpm = _rpm_module()
    rng = random.Random(5)
    evrs = list({_rpm_evr(rng) for _ in range(3000)})
    ours = sorted(evrs, key=lambda evr: version_key("rpm", _evr_string(evr)))
    for a, b in pairwise(ours):
        assert rpm.labelCompare(a, b) in (-1, 0), (a, b)
    theirs = sorted(evrs, key=functools.cmp_to_key(rpm.labelCompare))
    assert [version_key("rpm", _evr_string(e)) for e in theirs] == [version_key("rpm", _evr_string(e)) for e in ours]


@pytest.mark.parametrize(("version", "reason"), [
    ("", "empty"),
    ("1.0 1", "whitespace"),
    (" 1.0", "whitespace"),
    ("a:1.0", "epoch"),
    (":1.0", "epoch"),
    ("-1:1.0", "epoch"),
    ("1:", "version part is empty"),
    ("-1", "version part is empty"),
    ("1:-1.el9", "version part is empty"),
    ("1.0-", "release"),
])
def test_invalid_rpm_versions_are_rejected_with_the_reason(version, reason):
    with pytest.raises(InvalidVersion, match=reason) as caught:
        validate_version("rpm", version)
    assert "rpm" in str(caught.value) and repr(version) in str(caught.value)


# --- the library-backed ecosystems -------------------------------------------------------------------

ORDERED = {
    "pypi": ["0.9", "1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0.post1", "1.0.1",
             "1.1", "1!0.1"],
    "semver": ["0.9.9", "1.0.0-0", "1.0.0-1", "1.0.0-2", "1.0.0-10", "1.0.0-alpha", "1.0.0-alpha.1",
               "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1",
               "1.2.0", "1.10.0", "2.0.0"],
    "npm": ["0.0.1", "v0.1.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0", "=1.0.1",
            "1.2.3-rc.1", "1.2.3", "10.0.0"],
    "golang": ["v0.0.0-20191109021931-daa7c04131f5", "v0.0.1", "v0.1.0", "v1.0.0-rc.1", "v1.0.0", "v1.2.3",
               "v1.10.0", "v2.0.0-alpha", "v2.0.0"],
    "apk": ["1.2.2", "1.2.3_alpha1", "1.2.3_alpha2_pre1", "1.2.3_alpha2", "1.2.3_beta1", "1.2.3_pre1", "1.2.3_rc1",
            "1.2.3", "1.2.3-r0", "1.2.3-r1", "1.2.3-r10", "1.2.3_cvs1", "1.2.3_svn1", "1.2.3_git20230101",
            "1.2.3_git20230102", "1.2.3_hg1", "1.2.3_p1", "1.2.3_p1-r1", "1.2.3a", "1.2.4", "1.10.0", "006",
            "20240101_git20240102"],
    "maven": ["1.0-alpha-1", "1.0-beta-1", "1.0-milestone-1", "1.0-rc-1", "1.0-SNAPSHOT", "1.0", "1.0-sp-1",
              "1.0.1", "1.1", "10.0"],
    "gem": ["0.9", "1.0.0.a", "1.0.0.b1", "1.0.0.pre", "1.0.0.rc1", "1.0.0", "1.0.1", "1.1", "2.0", "10.0"],
    "nuget": ["0.9.0", "1.0.0-alpha", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.0.1", "1.0.1", "1.1.0", "2.0.0"],
}
EQUAL = {
    "pypi": [("1.0", "1.0.0"), ("1.0-1", "1.0.post1"), ("1.0RC1", "1.0rc1")],
    "semver": [("1.0.0+build.1", "1.0.0+build.2"), ("1.0.0-rc.1+x", "1.0.0-rc.1")],
    "npm": [("v1.2.3", "1.2.3"), ("=1.2.3", "1.2.3")],
    "golang": [("v1", "v1.0.0"), ("v1.2", "v1.2.0"), ("v1.2.3+incompatible", "v1.2.3")],
    "apk": [("1.0-r0", "1.0-r00"), ("2.0_p1", "2.0_p01"), ("06", "6"), ("1.0_rc01", "1.0_rc1")],
    "maven": [("1.0", "1.0.0"), ("1.0", "1"), ("1.0-ga", "1.0"), ("1.0-FINAL", "1.0")],
    "gem": [("1.0", "1.0.0"), ("1", "1.0")],
    "nuget": [("1.0", "1.0.0"), ("1.0.0.0", "1.0.0"), ("1.0.0-ALPHA", "1.0.0-alpha")],
}


# apk-tools rules a Gentoo-style comparison gets wrong: after a dot, digits with a leading zero compare as
# strings ("1.02" < "1.1", "1.0" < "1.00"); the first component is numeric ("006" == "6"); a missing "-rN"
# sorts below "-r0"; a "~hash" sorts by its text; "_p"/"_git"/"_svn"... are post-release suffixes.
APK_PAIRS = [
    ("1.02", "1.1", -1), ("1.001", "1.01", -1), ("1.0", "1.00", -1), ("1.09", "1.9", -1), ("1.9", "1.10", -1),
    ("1.02.07", "1.02.10-r1", -1), ("021109-r3", "20060512", -1), ("3.0.0-r2", "021109-r3", -1),
    ("1.06-r6", "006", -1), ("1.2", "1.2-r0", -1), ("1.2.0", "1.2.0_rc1", 1), ("2.0_rc1-r0", "2.0-r0", -1),
    ("1.3_pre1-r1", "1.3.2", -1), ("1.0_p10-r0", "1.0_p9-r0", 1), ("0.1.0_alpha_pre2", "0.1.0_alpha", -1),
    ("2.5.1-r8", "2.5.1a-r1", -1), ("1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0", -1),
    ("0.20070118", "0.20070207_rc1", -1), ("1.0_git20240101~1a2b-r0", "1.0_git20240101~1a2c-r0", -1),
    ("1.0_git20240101-r5", "1.0_git20240101~1a2b-r0", -1), ("1.0~ab", "1.0~AB", 1), ("1.2.1", "1.2a", 1),
    ("1.2a", "1.2_p1", 1), ("1.2_p1", "1.2-r1", 1), ("1.2_p1", "1.2_p1_alpha1", 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), APK_PAIRS)
def test_apk_tools_orderings(a, b, expected):
    assert compare_versions("apk", a, b) == expected
    assert compare_versions("apk", b, a) == -expected
    assert (version_key("apk", a) < version_key("apk", b)) == (expected == -1)


@pytest.mark.parametrize("ecosystem", sorted(ORDERED))
def test_known_orderings(ecosystem):
    chain = ORDERED[ecosystem]
    for i, a in enumerate(chain):
        for b in chain[i + 1:]:
            assert compare_versions(ecosystem, a, b) == -1, (a, b)
            assert compare_versions(ecosystem, b, a) == 1, (b, a)
            assert version_key(ecosystem, a) < version_key(ecosystem, b)
    shuffled = chain[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(shuffled, key=lambda v: version_key(ecosystem, v)) == chain


@pytest.mark.parametrize(("ecosystem", "a", "b"), [(e, a, b) for e, pairs in sorted(EQUAL.items()) for a, b in pairs])
def test_known_equalities(ecosystem, a, b):
    assert compare_versions(ecosystem, a, b) == 0
    assert compare_versions(ecosystem, b, a) == 0
    assert version_key(ecosystem, a) == version_key(ecosystem, b)


@pytest.mark.parametrize(("ecosystem", "version"), [
    ("pypi", "1.0-foo-bar"), ("pypi", "latest"), ("pypi", "1.0 "),
    ("semver", "1.0"), ("semver", "v1.0.0"), ("semver", "01.0.0"), ("semver", "1.0.0-"), ("semver", "1.0.0-01"),
    ("npm", "1.0"), ("npm", "x.y.z"),
    ("golang", "v1.2.3.4"), ("golang", "v01.2.3"), ("golang", "1.2-pre"),
    ("apk", "1.2.3_foo"), ("apk", "abc"), ("apk", "1.2.3-r1a"), ("apk", "1.2.3-r1_p1"), ("apk", "1.2a.3"),
    ("apk", "1.2.3-x"), ("apk", "1.0bc"), ("apk", "1.2.3-r1.2"), ("apk", "1.0-r"), ("apk", "1.2a3"),
    ("apk", "1.0~xyz"), ("apk", "1.0-r1-r2"), ("apk", "1-r1~ab"), ("apk", "_rc1"), ("apk", "1.2.3A"),
    ("gem", "1..0"), ("gem", "a.b"),
    ("nuget", "1.0.0.0.0"), ("nuget", "abc"),
    ("maven", ""), ("maven", "1 .0"),
])
def test_invalid_library_versions(ecosystem, version):
    with pytest.raises(InvalidVersion) as caught:
        validate_version(ecosystem, version)
    assert ecosystem in str(caught.value) and repr(version) in str(caught.value)


# --- API edges -----------------------------------------------------------------------------------------

def test_ecosystems_cover_the_required_set():
    assert {"deb", "rpm", "apk", "pypi", "semver", "npm", "maven", "gem", "golang", "nuget"} <= versions.ECOSYSTEMS


def test_unknown_ecosystem_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"deb.*rpm") as caught:
        compare_versions("cargo", "1.0.0", "1.0.1")
    assert not isinstance(caught.value, InvalidVersion)
    assert "cargo" in str(caught.value)


def test_invalid_version_message_is_clipped():
    with pytest.raises(InvalidVersion) as caught:
        validate_version("deb", "a" * 500)
    assert len(str(caught.value)) < 200
    assert caught.value.reason == "version number does not start with digit"


def test_compare_raises_for_either_side():
    with pytest.raises(InvalidVersion, match="'a1'"):
        compare_versions("deb", "1.0", "a1")
    with pytest.raises(InvalidVersion, match="'a1'"):
        compare_versions("deb", "a1", "1.0")


def test_ecosystem_for_manager():
    assert versions.ecosystem_for_manager("dpkg") == "deb"
    assert versions.ecosystem_for_manager("rpm") == "rpm"
    assert versions.ecosystem_for_manager("apk") == "apk"
    with pytest.raises(ValueError, match="pacman"):
        versions.ecosystem_for_manager("pacman")
