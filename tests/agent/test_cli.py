"""``khien-agent`` as a real subprocess against the fake server on loopback."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.fake_server import GOOD_TOKEN, FakeCollector, in_process_agent

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "khien-agent"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "agent"]


def agent(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> tuple[list[str], Path]:
    """``--state-dir`` and ``--config`` options pointing into tmp (never /etc or /var/lib)."""
    config = tmp_path / "agent.toml"
    # The CLI is under test here, not the modules: only heartbeat and inventory run.
    config.write_text("[sender]\nbackoff_initial_s = 0.1\n\n[patches]\nenabled = false\n\n"
                      "[authlog]\nenabled = false\n\n[fim]\nenabled = false\n\n[facts]\nenabled = false\n")
    state = tmp_path / "state"
    return ["--state-dir", str(state), "--config", str(config)], state


def enrolled(server: FakeCollector, home: tuple[list[str], Path]) -> list[str]:
    opts, _state = home
    proc = agent("enroll", "--server", server.url, "--token", GOOD_TOKEN, *opts)
    assert proc.returncode == 0, proc.stderr
    return opts


@pytest.mark.parametrize("command", [[], ["enroll"], ["run"], ["inventory"], ["status"]])
def test_help_on_every_command(command: list[str]) -> None:
    proc = agent(*command, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: khien-agent")


def test_enroll_stores_private_credentials(server: FakeCollector, home) -> None:
    opts, state = home
    proc = agent("enroll", "--server", server.url + "/", "--token", GOOD_TOKEN, *opts)
    assert proc.returncode == 0, proc.stderr
    assert "enrolled as agent" in proc.stdout and "SO-TEST" in proc.stdout
    path = state / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = json.loads(path.read_text())
    assert creds["server"] == server.url and server.agents[creds["agent_id"]] == creds["secret"]
    assert creds["enrolled_at"]


def test_enroll_failures_are_one_line(server: FakeCollector, home) -> None:
    opts, _ = home
    assert "token rejected" in one_error_line(agent("enroll", "--server", server.url, "--token", "nope", *opts))
    assert "refusing plain http://" in one_error_line(
        agent("enroll", "--server", "http://192.0.2.10", "--token", "t", *opts))
    assert "invalid server URL" in one_error_line(agent("enroll", "--server", "khien", "--token", "t", *opts))
    server.stop()
    assert "connection refused" in one_error_line(
        agent("enroll", "--server", server.url, "--token", GOOD_TOKEN, *opts))


def test_not_enrolled_and_bad_config_are_one_line(tmp_path: Path, home) -> None:
    opts, _ = home
    assert "not enrolled" in one_error_line(agent("run", "--once", *opts))
    bad = tmp_path / "bad.toml"
    bad.write_text("[spool]\nmax_byte = 1\n")
    line = one_error_line(agent("run", "--once", "--config", str(bad)))
    assert "unknown option 'max_byte' in [spool]" in line


def test_run_once_sends_inventory_and_heartbeat(server: FakeCollector, home) -> None:
    opts = enrolled(server, home)
    proc = agent("run", "--once", *opts)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sent ")
    types = [json.loads(i)["type"] for i in server.items]
    assert types.count("inventory.snapshot") == 1 and types.count("host.heartbeat") == 1
    status = agent("status", "--json", *opts)
    report = json.loads(status.stdout)
    assert report["enrolled"] and report["spool"]["items"] == 0
    assert report["status"]["last_send_result"] == "ok"
    assert "secret" not in report["credentials"]


def test_run_once_with_server_down_keeps_data_then_delivers_it(server: FakeCollector, home) -> None:
    opts = enrolled(server, home)
    server.stop()
    line = one_error_line(agent("run", "--once", *opts), code=3)
    assert "items remain spooled" in line and "connection refused" in line
    assert "2 items" in line
    line = one_error_line(agent("run", "--once", *opts), code=3)
    assert "4 items remain spooled" in line  # the spool grows while the server is away
    server.start()
    proc = agent("run", "--once", *opts)
    assert proc.returncode == 0, proc.stderr
    assert len(server.items) == server.distinct_items() == 6  # nothing lost, nothing twice


def test_status_report(server: FakeCollector, home) -> None:
    opts = enrolled(server, home)
    server.revoked.update(server.agents)
    assert "credential rejected — re-enroll" in one_error_line(agent("run", "--once", *opts), code=3)
    proc = agent("status", *opts)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("Enrolled:", "yes: agent", server.url, "Credential:", "REJECTED", "Spool:",
                   "2 items", "Dropped:", "Dead letters:", "Module heartbeat:", "Module inventory:",
                   "not running", "Budget:", "of 60 MB", "of 5%"):
        assert needle in out, (needle, out)


def test_status_when_not_enrolled(home) -> None:
    opts, _ = home
    proc = agent("status", *opts)
    assert "not enrolled" in one_error_line(proc)
    assert "Enrolled:" in proc.stdout


def test_inventory_prints_json() -> None:
    proc = agent("inventory")
    assert proc.returncode == 0, proc.stderr
    sections = json.loads(proc.stdout)
    assert {"identity", "os", "packages"} <= set(sections)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signal(server: FakeCollector, home, signum: int) -> None:
    opts = enrolled(server, home)
    proc = subprocess.Popen([*COMMAND, "run", *opts], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(server.items) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert len(server.items) >= 2
    status = json.loads((home[1] / "status.json").read_text())
    assert status["pid"] == proc.pid and status["spool"]["items"] == 0
    assert os.path.exists(home[1] / "spool.db")


# --- the runner in-process: behaviour that a subprocess cannot show cheaply ---------------------

def test_runner_resumes_after_re_enrollment_without_restart(server: FakeCollector, tmp_path: Path) -> None:
    from agent.state import Credentials, save_credentials

    with in_process_agent(server, tmp_path) as runner:
        server.revoked.add(runner.credentials.agent_id)
        assert runner.run_once().outcome == "credential_rejected"
        assert runner.spool.stats()["items"] == 2
        agent_id, secret = server.add_agent()
        save_credentials(tmp_path, Credentials(server=server.url, agent_id=agent_id, secret=secret))
        os.utime(tmp_path / "credentials.json", (time.time() + 5, time.time() + 5))
        runner._send_tick()
        assert runner.spool.stats()["items"] == 0
        assert runner.status.snapshot()["credential_rejected"] is False
    assert server.distinct_items() == 2


def test_runner_resends_full_inventory_after_a_loss(server: FakeCollector, tmp_path: Path) -> None:
    from tests.agent.fake_server import Scripted

    with in_process_agent(server, tmp_path) as runner:
        server.script.append(Scripted(422, detail="items.0: rejected"))
        result = runner.run_once()
        assert result.dead_lettered == 2 and result.ok
        inventory = next(c for c in runner.collectors if c.name == "inventory")
        assert inventory.sent_hashes == {}  # the next run sends every section again
        runner.run_once()
    snapshots = [json.loads(i) for i in server.items if '"inventory.snapshot"' in i]
    assert len(snapshots) == 1 and snapshots[0]["data"]["full"] is True


def test_server_settings_are_applied_within_limits(server: FakeCollector, tmp_path: Path) -> None:
    server.config.update(heartbeat_interval_s=1, batch_max_items=100, inventory_interval_s=7200,
                         send_interval_s=100_000)
    with in_process_agent(server, tmp_path) as runner:
        assert runner.send_interval_s == 5  # the local default, until the server says otherwise
        applied = runner.apply_server_settings()
        assert applied["heartbeat_interval_s"] == 10  # floored: a bad server config must not hammer
        assert runner.intervals["heartbeat"] == 10 and runner.intervals["inventory"] == 7200
        assert runner.sender.batch_max_items == 100
        assert runner.send_interval_s == 300  # capped: a server cannot make an agent hold items for days
        server.stop()
        assert runner.apply_server_settings() == {}  # unreachable: local settings stay


def test_runner_builds_the_configured_modules(server: FakeCollector, tmp_path: Path) -> None:
    from agent.config import Config
    from agent.runner import Agent
    from agent.state import Credentials

    agent_id, secret = server.add_agent()
    creds = Credentials(server=server.url, agent_id=agent_id, secret=secret)
    config = Config()
    config.agent.state_dir = str(tmp_path / "all")
    with Agent(config, creds) as runner:  # defaults: every module but the optional network watch
        assert [c.name for c in runner.collectors] == ["inventory", "patches", "facts", "authlog", "fim",
                                                          "heartbeat"]
        assert runner.sink_for(runner.collectors[3]) is not runner.sink  # event modules pass the flood gate
        assert runner.sink_for(runner.collectors[0]) is runner.sink
    config = Config()
    config.agent.state_dir = str(tmp_path / "few")
    config.patches.enabled = config.authlog.enabled = config.fim.enabled = config.facts.enabled = False
    config.netwatch.enabled = True
    with Agent(config, creds) as runner:
        assert [c.name for c in runner.collectors] == ["inventory", "netwatch", "heartbeat"]
