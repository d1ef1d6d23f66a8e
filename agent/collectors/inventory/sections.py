"""Section name -> the function that builds it, and the loop that runs them all, one failure at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from agent.collectors.inventory.accounts import collect_groups, collect_users
from agent.collectors.inventory.hardware import collect_hardware
from agent.collectors.inventory.identity import collect_identity
from agent.collectors.inventory.interfaces import collect_interfaces
from agent.collectors.inventory.os_info import collect_os
from agent.collectors.inventory.packages import collect_packages
from agent.collectors.inventory.ports import collect_listening_ports
from agent.collectors.inventory.services import collect_services

log = logging.getLogger(__name__)

SectionFunction = Callable[[Path], list[dict]]

LINUX_SECTIONS: dict[str, SectionFunction] = {
    "identity": lambda root: [collect_identity(root)],
    "os": collect_os,
    "hardware": collect_hardware,
    "interfaces": collect_interfaces,
    "listening_ports": collect_listening_ports,
    "users": collect_users,
    "groups": collect_groups,
    "services": collect_services,
    "packages": collect_packages,
}


def gather(root: Path, functions: Mapping[str, SectionFunction]) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Run every section function; a failing one is recorded in the errors and the rest still run."""
    rows: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for name, function in functions.items():
        try:
            rows[name] = function(root)
        except Exception as exc:  # noqa: BLE001 - one broken section must not cost the other eight
            errors[name] = f"{type(exc).__name__}: {exc}"
            log.warning("inventory section %s failed: %s", name, errors[name])
    return rows, errors
