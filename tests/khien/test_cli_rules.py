"""``khien rules lint|test`` and ``khien unit ports`` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.khien.test_cli import assert_one_line_error, run

KHIEN = [sys.executable, "-m", "khien.cli"]
BAD = Path(__file__).resolve().parents[1] / "rules" / "fixtures" / "detect" / "bad"
BUILT_IN = Path(__file__).resolve().parents[2] / "rules" / "data" / "detections"


def rules(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KHIEN, "rules", *args], capture_output=True, text=True, timeout=120)


def test_built_in_rules_lint_and_test_clean():
    count = len(list(BUILT_IN.glob("*.yaml")))
    lint = rules("lint")
    assert lint.returncode == 0 and f"{count} rules OK" in lint.stdout, lint.stderr
    test = rules("test")
    assert test.returncode == 0 and "0 failed" in test.stdout, test.stderr


def test_broken_rules_fail_lint_naming_every_file_and_line():
    lint = rules("lint", "--path", str(BAD))
    assert lint.returncode == 1
    named = {line.split(":")[0] for line in lint.stderr.splitlines() if ".yaml:" in line}
    assert {Path(n).name for n in named} >= {p.name for p in BAD.glob("*.yaml")}
    assert all(line.split(":")[1].isdigit() for line in lint.stderr.splitlines() if ".yaml:" in line)


def test_a_failing_example_fails_rules_test(tmp_path):
    rule = (BUILT_IN / "ssh_lnx_root_login.yaml").read_text()
    # Flip the first negative example into a claimed positive: the run must report it and exit 1.
    (tmp_path / "ssh_lnx_root_login.yaml").write_text(rule.replace("alerts: 0", "alerts: 1", 1))
    test = rules("test", "--path", str(tmp_path))
    assert test.returncode == 1 and "ssh_lnx_root_login" in test.stderr


def test_unit_ports(db_url):
    assert run(db_url, "unit", "add", "HN", "--name", "Hà Nội", "--kind", "province").returncode == 0
    ok = run(db_url, "unit", "ports", "HN", "--allow", "443,22,22")
    assert ok.returncode == 0 and "22,443" in ok.stdout
    assert_one_line_error(run(db_url, "unit", "ports", "HN", "--allow", "22,ssh"), "comma-separated")
    assert_one_line_error(run(db_url, "unit", "ports", "HN", "--allow", "99999"), "1-65535")
    assert_one_line_error(run(db_url, "unit", "ports", "HN"), "--allow")
    assert run(db_url, "unit", "ports", "HN", "--clear").stdout.strip().endswith("inherited")
