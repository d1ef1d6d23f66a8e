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
    assert "SLA table 2026.1 OK (24 deadlines)" in lint.stdout and "risky services OK" in lint.stdout
    assert "scoring model 2026.1 OK (11 indicators)" in lint.stdout and "plan goals OK" in lint.stdout
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


def test_check_on_a_facts_file_and_on_this_host(tmp_path):
    import json

    facts = {"kinds": {"sshd": {"available": True, "installed": True, "settings": {"permitrootlogin": "yes"}}}}
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    out = subprocess.run([*KHIEN, "check", "--facts", str(tmp_path / "facts.json"), "--level", "3", "--os", "debian",
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_id = {r["check_id"]: r["status"] for r in report["results"]}
    assert by_id["ssh_lnx_root_login_disabled"] == "fail" and report["level"] == 3
    assert by_id["fw_lnx_firewall_active"] == "not_applicable"  # no firewall facts in the file
    here = subprocess.run([*KHIEN, "check"], capture_output=True, text=True, timeout=120)
    assert here.returncode == 0 and "score" in here.stdout.splitlines()[-1], here.stderr
    bad = subprocess.run([*KHIEN, "check", "--facts", "-"], input="[1, 2]", capture_output=True, text=True)
    assert_one_line_error(bad, "JSON object")


def test_host_classification_and_exceptions(db_url):
    from collector.db import Database
    from collector.hosts import service as hosts
    from collector.types import utcnow
    from tests.collector import helpers as h

    db = Database(db_url)
    h.seed_units(db)
    h.add_user(db, "boss", "admin")
    h.add_user(db, "clerk", "analyst")
    with db.transaction() as s:
        from collector.units import service as units

        host = hosts.find_or_create(s, unit_id=units.get_by_code(s, code="D1").id, identity=h.identity(),
                                    now=utcnow())
        host_id = host.id
    db.dispose()
    assert "level 3, internet-facing" in run(db_url, "host", "set", str(host_id), "--level", "3",
                                              "--internet-facing", "yes").stdout
    assert_one_line_error(run(db_url, "host", "set", "999999", "--level", "2"), "not found")
    common = ["--check", "ssh_lnx_root_login_disabled", "--host", str(host_id), "--justification",
              "legacy appliance until 2027", "--compensating", "admin VLAN only"]
    assert_one_line_error(run(db_url, "exception", "add", *common, "--approver", "clerk"), "administrators")
    assert_one_line_error(run(db_url, "exception", "add", *common, "--approver", "boss", "--expires", "120d"),
                          "at most 90 days")
    added = run(db_url, "exception", "add", *common, "--approver", "boss", "--expires", "30d")
    assert added.returncode == 0 and added.stdout.startswith("exception "), added.stderr
    exc_id = added.stdout.split()[1].rstrip(":")
    assert "active" in run(db_url, "exception", "list").stdout
    assert run(db_url, "exception", "renew", exc_id, "--approver", "boss").returncode == 0
    assert_one_line_error(run(db_url, "exception", "renew", exc_id, "--approver", "boss"), "already renewed")
    assert run(db_url, "exception", "revoke", exc_id, "--by", "boss", "--reason", "fixed").returncode == 0
    assert "revoked" in run(db_url, "exception", "list", "--status", "revoked").stdout


def test_import_sigma_into_the_data_dir_and_the_server_loads_it(tmp_path):
    sigma = Path(__file__).resolve().parents[1] / "rules" / "fixtures" / "sigma"
    data = tmp_path / "data"
    out = subprocess.run([*KHIEN, "rules", "import-sigma", str(sigma), "--data-dir", str(data)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    written = sorted(p.stem for p in (data / "rules" / "detections").glob("*.yaml"))
    assert written and all(name.startswith("sigma_") for name in written)
    assert "skipped" in out.stdout and "converted" in out.stdout
    lint = subprocess.run([*KHIEN, "rules", "lint", "--data-dir", str(data)], capture_output=True, text=True,
                          timeout=120)
    built_in = len(list(BUILT_IN.glob("*.yaml")))
    assert lint.returncode == 0 and f"{built_in + len(written)} rules OK" in lint.stdout, lint.stderr

    from collector.settings import load_settings
    from khien.app import build_app

    app = build_app(load_settings(data_dir=data, database_url=f"sqlite:///{tmp_path / 'k.db'}"))
    assert set(written) <= set(app.state.detection.ruleset.rules)
