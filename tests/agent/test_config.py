"""Agent config: defaults, the example file, and one-line errors for unknown or bad options."""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest

from agent import config as config_module
from agent.config import Config, ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "install" / "agent.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_brief() -> None:
    config = Config()
    assert config.schedule.heartbeat_s == 60
    assert config.schedule.inventory_s == 3600
    assert config.schedule.inventory_full_s == 86400
    assert config.spool.max_bytes == 256 * 1024 * 1024
    assert (config.sender.batch_max_items, config.sender.batch_max_bytes) == (500, 1048576)
    assert (config.sender.timeout_s, config.sender.backoff_initial_s, config.sender.backoff_max_s) == (30, 1, 300)
    assert config.server.allow_insecure_http is False


def test_example_file_documents_every_option_with_its_default() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    defaults = {k: v for k, v in asdict(Config()).items() if k != "source"}
    assert {s: set(opts) for s, opts in raw.items()} == {s: set(opts) for s, opts in defaults.items()}
    assert asdict(parse_config(raw)) | {"source": None} == asdict(Config())
    text = EXAMPLE.read_text().splitlines()
    for section, options in defaults.items():
        for option in options:
            line = next(i for i, t in enumerate(text) if t.startswith(f"{option} ="))
            assert text[line - 1].startswith("#"), f"{section}.{option} has no comment above it"


def test_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nurl = "https://khien.example"\n[schedule]\nheartbeat_s = 15\n'
                           '[sender]\ntimeout_s = 2.5\n[agent]\nlog_level = "debug"\n')
    config = load_config(path)
    assert config.server.url == "https://khien.example"
    assert config.schedule.heartbeat_s == 15
    assert config.sender.timeout_s == 2.5
    assert config.agent.log_level == "DEBUG"


@pytest.mark.parametrize(("text", "needle"), [
    ("[sender]\nbatch_max_itemz = 5\n", "unknown option 'batch_max_itemz' in [sender]"),
    ("[sendr]\nx = 1\n", "unknown section [sendr]"),
    ("[schedule]\nheartbeat_s = \"60\"\n", "schedule.heartbeat_s must be an integer"),
    ("[server]\nallow_insecure_http = 1\n", "server.allow_insecure_http must be true or false"),
    ("[spool]\nmax_bytes = 0\n", "spool.max_bytes must be greater than 0"),
    ("[agent]\nlog_level = \"loud\"\n", "agent.log_level must be one of"),
    ("[server\n", "invalid TOML"),
])
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert needle in message
    assert "\n" not in message
    assert str(path) in message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_default_file_used_only_if_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    assert load_config().source is None
    present = write(tmp_path, "[schedule]\nheartbeat_s = 30\n")
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", present)
    assert load_config().schedule.heartbeat_s == 30


def test_state_dir_override_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f'[agent]\nstate_dir = "{tmp_path / "from-file"}"\n')
    assert load_config(path).state_dir == tmp_path / "from-file"
    assert load_config(path, state_dir=tmp_path / "cli").state_dir == tmp_path / "cli"
    monkeypatch.setattr(config_module.os, "geteuid", lambda: 0)
    assert Config().state_dir == Path("/var/lib/khien-agent")
    monkeypatch.setattr(config_module.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Config().state_dir == tmp_path / ".local" / "state" / "khien-agent"
