"""Agent configuration: a TOML file (every option in install/agent.example.toml) over built-in defaults.

Read once at command start, never at import. Unknown sections or keys are errors that name the key,
so a typo cannot silently leave a default in force.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/khien/agent.toml")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class AgentError(Exception):
    """Base of every error the agent raises on purpose; the CLI prints it as one line."""


class ConfigError(AgentError):
    """The configuration file is missing, malformed, or has an unknown or invalid option."""


@dataclass
class ServerSection:
    url: str = ""
    ca_file: str = ""
    allow_insecure_http: bool = False


@dataclass
class AgentSection:
    state_dir: str = ""
    log_level: str = "INFO"
    # Where the host's files are (os-release, dpkg/rpm databases, passwd...): "/" normally; the mount
    # point of the host's filesystem when the agent runs in a container (e.g. "/host").
    host_root: str = "/"


@dataclass
class ScheduleSection:
    heartbeat_s: int = 60
    inventory_s: int = 3600
    inventory_full_s: int = 86400


@dataclass
class SpoolSection:
    max_bytes: int = 256 * 1024 * 1024


@dataclass
class SenderSection:
    batch_max_items: int = 500
    batch_max_bytes: int = 1024 * 1024
    interval_s: float = 5.0
    timeout_s: float = 30.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0


@dataclass
class BudgetSection:
    max_rss_mb: int = 60
    max_cpu_percent: float = 5.0
    window_s: float = 60.0
    pause_s: float = 300.0
    check_s: float = 5.0


@dataclass
class FloodSection:
    overall_eps: float = 500.0
    overall_burst: int = 5000
    module_eps: float = 200.0
    module_burst: int = 2000


@dataclass
class PatchesSection:
    enabled: bool = True
    every_s: int = 86400
    check_s: int = 300
    timeout_s: float = 120.0


@dataclass
class FactsSection:
    enabled: bool = True
    every_s: int = 43200
    check_s: int = 300
    timeout_s: float = 10.0
    skip: list[str] = field(default_factory=list)


@dataclass
class AuthlogSection:
    enabled: bool = True
    paths: list[str] = field(default_factory=list)
    use_journal: bool = True
    start_at_end: bool = True
    interval_s: float = 5.0
    max_lines_per_run: int = 5000


@dataclass
class FimSection:
    enabled: bool = True
    paths: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    web_roots: list[str] = field(default_factory=list)
    rescan_s: int = 43200
    max_file_mb: int = 50
    max_files: int = 100_000
    interval_s: float = 1.0
    max_cpu_percent: float = 2.0
    queue_size: int = 5000


@dataclass
class NetwatchSection:
    enabled: bool = False
    interface: str = ""
    ports_threshold: int = 20
    hosts_threshold: int = 10
    window_s: float = 60.0
    cooldown_s: float = 300.0
    interval_s: float = 5.0


@dataclass
class Config:
    server: ServerSection = field(default_factory=ServerSection)
    agent: AgentSection = field(default_factory=AgentSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    spool: SpoolSection = field(default_factory=SpoolSection)
    sender: SenderSection = field(default_factory=SenderSection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    flood: FloodSection = field(default_factory=FloodSection)
    patches: PatchesSection = field(default_factory=PatchesSection)
    facts: FactsSection = field(default_factory=FactsSection)
    authlog: AuthlogSection = field(default_factory=AuthlogSection)
    fim: FimSection = field(default_factory=FimSection)
    netwatch: NetwatchSection = field(default_factory=NetwatchSection)
    source: Path | None = None  # the file this came from, for messages

    @property
    def state_dir(self) -> Path:
        """The state directory: configured, else the per-user or system default."""
        return Path(self.agent.state_dir).expanduser().absolute() if self.agent.state_dir else default_state_dir()


def default_state_dir() -> Path:
    """``/var/lib/khien-agent`` for root, ``~/.local/state/khien-agent`` otherwise."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/khien-agent")
    return Path.home() / ".local" / "state" / "khien-agent"


def load_config(path: str | Path | None = None, *, state_dir: str | Path | None = None) -> Config:
    """Load ``path`` (or the default file if it exists) and apply a ``--state-dir`` override."""
    config = Config()
    source = Path(path) if path else (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None)
    if source is not None:
        config = parse_config(_read_toml(source), source=source)
    if state_dir:
        config.agent.state_dir = str(state_dir)
    return config


def parse_config(raw: dict[str, Any], *, source: Path | None = None) -> Config:
    """Build a Config from parsed TOML, rejecting unknown keys and wrong types."""
    where = f"{source}: " if source else ""
    config = Config(source=source)
    sections = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "source"}
    for section_name, values in raw.items():
        if section_name not in sections:
            raise ConfigError(f"{where}unknown section [{section_name}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}[{section_name}] must be a table")
        _apply_section(sections[section_name], section_name, values, where)
    _check_values(config, where)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _apply_section(target: Any, section: str, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}unknown option '{key}' in [{section}] (known: {', '.join(known)})")
        default = getattr(type(target)(), key)
        setattr(target, key, _coerce(value, default, f"{section}.{key}", where))


def _coerce(value: Any, default: Any, name: str, where: str) -> Any:
    # bool is an int subclass in Python, so check it first and never accept it as a number.
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}{name} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}{name} must be an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}{name} must be a number, got {value!r}")
    if isinstance(default, list):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}{name} must be a list of strings, got {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{where}{name} must be a string, got {value!r}")


def _options(config: Config) -> Iterator[tuple[str, Any]]:
    """(``section.option``, value) for every option of every section."""
    for section in fields(config):
        if section.name != "source":
            values = getattr(config, section.name)
            for option in fields(values):
                yield f"{section.name}.{option.name}", getattr(values, option.name)


def _check_values(config: Config, where: str) -> None:
    # Every number in the config is a size, count, rate or duration: all must be positive.
    for name, value in _options(config):
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            raise ConfigError(f"{where}{name} must be greater than 0, got {value!r}")
    level = config.agent.log_level.upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{where}agent.log_level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    config.agent.log_level = level
    _check_fact_kinds(config, where)
    if config.sender.backoff_max_s < config.sender.backoff_initial_s:
        raise ConfigError(f"{where}sender.backoff_max_s must be at least sender.backoff_initial_s")


def _check_fact_kinds(config: Config, where: str) -> None:
    from agent.collectors.facts.kinds import KIND_NAMES  # stdlib-only, and only when a config is loaded

    unknown = [k for k in config.facts.skip if k not in KIND_NAMES]
    if unknown:
        raise ConfigError(f"{where}facts.skip: unknown fact kind {unknown[0]!r} (known: {', '.join(KIND_NAMES)})")
