"""The systemd units: `systemd-analyze verify` without a single warning, the exposure `systemd-analyze
security` gives them, and the agent's drop-in following the modules enabled in agent.toml."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agent.config import parse_config
from tests.install.conftest import INSTALL

SYSTEMD = INSTALL / "systemd"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
pytestmark = pytest.mark.skipif(not Path(ANALYZE).exists(),
                                reason="systemd-analyze not installed (Debian package systemd; tests/run installs it)")


def load_dropin_module():
    spec = importlib.util.spec_from_file_location("unit_dropin", INSTALL / "agent" / "unit_dropin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unit_dropin = load_dropin_module()


def staged(tmp_path: Path, unit: str, binary: str, name: str | None = None) -> Path:
    """The unit copied beside a stand-in for its binary (verify checks ExecStart is executable)."""
    stub = tmp_path / "bin" / Path(binary).name
    stub.parent.mkdir(exist_ok=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    text = (SYSTEMD / unit).read_text()
    assert binary in text
    path = tmp_path / (name or unit)
    path.write_text(text.replace(binary, str(stub)))
    return path


def analyze(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_verifies(unit: Path) -> None:
    proc = analyze("verify", unit)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr


@pytest.mark.parametrize("toml", ["", "[netwatch]\nenabled = true\n",
                                  "[facts]\nenabled = false\n[budget]\nmax_rss_mb = 100\nmax_cpu_percent = 2.5\n"])
def test_agent_unit_and_its_dropin_verify_cleanly(tmp_path, toml):
    unit = staged(tmp_path, "khien-agent.service", "/opt/khien-agent/bin/khien-agent")
    dropins = tmp_path / "khien-agent.service.d"
    dropins.mkdir()
    (dropins / "50-modules.conf").write_text(unit_dropin.render(parse_config(tomllib.loads(toml))))
    assert_verifies(unit)


def test_server_units_verify_cleanly(tmp_path):
    assert_verifies(staged(tmp_path, "khien-server.service", "/opt/khien/bin/khien"))
    # A template is verified through an instance of it.
    assert_verifies(staged(tmp_path, "khien-server@.service", "/opt/khien/bin/khien", name="khien-server@8001.service"))


@pytest.mark.parametrize(("unit", "binary", "threshold"), [
    # Root with a bounding set (reasons in the unit file); measured 3.4 "OK".
    ("khien-agent.service", "/opt/khien-agent/bin/khien-agent", 3.5),
    # Its own user, no capability, no JIT memory; measured 1.1 "OK" (0–1 would need a private network).
    ("khien-server.service", "/opt/khien/bin/khien", 1.2),
])
def test_exposure_stays_where_it_was_measured(tmp_path, unit, binary, threshold):
    proc = analyze("security", "--offline=yes", staged(tmp_path, unit, binary))
    level = float(proc.stdout.rsplit("Overall exposure level for", 1)[1].split(":")[1].split()[0])
    assert level <= threshold, proc.stdout


def test_dropin_grants_only_what_the_enabled_modules_need():
    default = parse_config({})
    assert unit_dropin.capabilities(default) == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_NET_ADMIN",
                                                 "CAP_NET_RAW", "CAP_AUDIT_CONTROL"]
    assert "AF_PACKET" not in unit_dropin.address_families(default)

    quiet = parse_config({"facts": {"skip": ["firewall", "auditd"]}})
    assert unit_dropin.capabilities(quiet) == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]

    netwatch = parse_config({"facts": {"enabled": False}, "netwatch": {"enabled": True}})
    assert unit_dropin.capabilities(netwatch) == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_NET_RAW"]
    assert unit_dropin.address_families(netwatch)[-1] == "AF_PACKET"


def test_dropin_limits_follow_the_budget_and_the_default_matches_the_unit():
    assert unit_dropin.limits(parse_config({})) == {"MemoryHigh": "252M", "MemoryMax": "504M", "CPUQuota": "20%"}
    tight = parse_config({"budget": {"max_rss_mb": 40, "max_cpu_percent": 2.5}})
    assert unit_dropin.limits(tight) == {"MemoryHigh": "232M", "MemoryMax": "464M", "CPUQuota": "10%"}
    # The unit file alone (e.g. before the drop-in is written) carries the defaults' values.
    unit = (SYSTEMD / "khien-agent.service").read_text()
    for key, value in unit_dropin.limits(parse_config({})).items():
        assert f"\n{key}={value}\n" in unit
    caps = " ".join(unit_dropin.capabilities(parse_config({})))
    assert f"\nCapabilityBoundingSet={caps}\n" in unit


def test_dropin_script_refuses_a_broken_config_with_one_line(tmp_path):
    bad = tmp_path / "agent.toml"
    bad.write_text("[fim]\nenabeld = true\n")
    proc = subprocess.run([sys.executable, str(INSTALL / "agent" / "unit_dropin.py"), "--config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "unknown option 'enabeld' in [fim]" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_sysusers_file_creates_the_server_user(tmp_path):
    """systemd-sysusers, run on a throwaway root, makes the user the server units run as."""
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers, "systemd-sysusers comes with the systemd package"
    (tmp_path / "etc").mkdir()
    proc = subprocess.run([sysusers, f"--root={tmp_path}", str(SYSTEMD / "khien.sysusers.conf")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    [user] = [line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()
              if line.startswith("khien:")]
    assert user[5:] == ["/var/lib/khien", "/usr/sbin/nologin"] and int(user[2]) < 1000  # a system account
    assert any(line.startswith("khien:") for line in (tmp_path / "etc/group").read_text().splitlines())
    for unit in ("khien-server.service", "khien-server@.service"):
        assert "\nUser=khien\nGroup=khien\n" in (SYSTEMD / unit).read_text()

