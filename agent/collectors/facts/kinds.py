"""The fixed set of fact kinds: name -> collecting function. The server never adds to it."""

from __future__ import annotations

from collections.abc import Callable

from agent.collectors.facts.accounts import collect_accounts
from agent.collectors.facts.antimalware import collect_antimalware
from agent.collectors.facts.auditd import collect_auditd
from agent.collectors.facts.files import collect_files
from agent.collectors.facts.firewall import collect_firewall
from agent.collectors.facts.logindefs import collect_logindefs
from agent.collectors.facts.logs import collect_logging
from agent.collectors.facts.pam import collect_pam
from agent.collectors.facts.services import collect_services
from agent.collectors.facts.sshd import collect_sshd
from agent.collectors.facts.storage import collect_storage
from agent.collectors.facts.sudoers import collect_sudoers
from agent.collectors.facts.sysctl import collect_sysctl
from agent.collectors.facts.timesync import collect_timesync
from agent.collectors.facts.upgrades import collect_upgrades

KindFunction = Callable[..., dict]

KINDS: dict[str, KindFunction] = {
    "sshd": collect_sshd,
    "logindefs": collect_logindefs,
    "pam": collect_pam,
    "accounts": collect_accounts,
    "sudoers": collect_sudoers,
    "sysctl": collect_sysctl,
    "firewall": collect_firewall,
    "services": collect_services,
    "auditd": collect_auditd,
    "timesync": collect_timesync,
    "antimalware": collect_antimalware,
    "logging": collect_logging,
    "files": collect_files,
    "upgrades": collect_upgrades,
    "storage": collect_storage,
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)

__all__ = ["KINDS", "KIND_NAMES"]
