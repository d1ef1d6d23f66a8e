"""install/server.env documents every KHIEN_* variable the server side reads, with valid values and
the true defaults — so a setting added later cannot be forgotten there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.settings import load_settings
from tests.install.conftest import INSTALL, REPO

ENV_FILE = INSTALL / "server.env"
SERVER_PACKAGES = ("collector", "console", "khien")
NAME = re.compile(r"KHIEN_[A-Z0-9_]*[A-Z0-9]")
# "KHIEN_" + something computed ("KHIEN_" + name, f"KHIEN_{name}"): a name no grep can check.
BUILT_NAME = re.compile(r"""["']KHIEN_["'{]|KHIEN_\{""")
LINE = re.compile(r"^(#?)(KHIEN_[A-Z0-9_]+)=(.*)$")


def sources() -> list[Path]:
    return [p for package in SERVER_PACKAGES for p in sorted((REPO / package).rglob("*.py"))]


def names_in_code() -> set[str]:
    found: set[str] = set()
    for path in sources():
        text = path.read_text(encoding="utf-8")
        assert not BUILT_NAME.search(text), f"{path}: a KHIEN_* variable name built at run time; spell it out"
        found |= set(NAME.findall(text))
    return found


def documented() -> dict[str, tuple[bool, str]]:
    """NAME -> (commented out, value) for every variable line of server.env."""
    found = {}
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if match:
            assert match[2] not in found, f"{match[2]} appears twice in server.env"
            found[match[2]] = (match[1] == "#", match[3])
    return found


def test_every_variable_the_server_reads_is_documented_and_nothing_else():
    in_code, in_file = names_in_code(), set(documented())
    assert len(in_code) >= 10  # the grep itself works
    assert not in_code - in_file, f"read by the code but missing from install/server.env: {sorted(in_code - in_file)}"
    assert not in_file - in_code, f"documented but read nowhere: {sorted(in_file - in_code)}"


def test_every_variable_has_its_own_explanation_above_it():
    lines = ENV_FILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if not LINE.match(line):
            continue
        above = number - 1
        while above >= 0 and LINE.match(lines[above]):  # a pair like RATE_PER_S/RATE_BURST shares one
            above -= 1
        assert above >= 0 and re.match(r"^# \S", lines[above]), f"no comment above line {number + 1}: {line}"


def test_file_is_plain_name_value_lines_systemd_can_read():
    for number, line in enumerate(ENV_FILE.read_text(encoding="utf-8").splitlines(), 1):
        assert line == "" or line.startswith("#") or LINE.match(line), f"line {number}: {line!r}"
        assert not line.endswith((" ", "\t")), f"line {number}: trailing blank would be part of the value"


@pytest.fixture
def clean_env(monkeypatch):
    for name in names_in_code():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_commented_lines_are_the_true_defaults(clean_env):
    defaults = load_settings()
    for name, (commented, value) in documented().items():
        if commented:
            clean_env.setenv(name, value)
            assert load_settings() == defaults, f"#{name}={value} is not the default"
            clean_env.delenv(name)


def test_the_recommended_file_as_a_whole_is_accepted(clean_env):
    active = {name: value for name, (commented, value) in documented().items() if not commented}
    assert {"KHIEN_DATABASE_URL", "KHIEN_HOST", "KHIEN_TRUSTED_PROXIES"} <= set(active)
    for name, value in active.items():
        clean_env.setenv(name, value)
    settings = load_settings()
    assert settings.database_url.startswith("postgresql+psycopg://") and settings.host == "127.0.0.1"
    assert settings.trusted_proxies == ("127.0.0.1",)


def test_a_setting_missing_from_the_file_is_caught(tmp_path, monkeypatch):
    """The check fails for real: a new variable in the code shows up as missing."""
    package = tmp_path / "collector"
    package.mkdir()
    (package / "new.py").write_text('import os\nos.environ.get("KHIEN_BRAND_NEW_SETTING")\n')
    monkeypatch.setattr("tests.install.test_server_env.REPO", tmp_path)
    assert names_in_code() == {"KHIEN_BRAND_NEW_SETTING"}
    (package / "built.py").write_text('import os\nos.environ.get(f"KHIEN_{name}")\n')
    with pytest.raises(AssertionError, match="built at run time"):
        names_in_code()
