"""What the browser flows find in the database: units, one user per role, hosts, a published year.

Seeded through the services before the server starts (the same builders the console's HTTP tests use),
so every flow starts from a known world. Flows must not change it in ways another flow would notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from collector.db import Database
from collector.scoring import review
from tests.console import alerts_helpers as ah
from tests.console import helpers as h
from tests.console import remediation_helpers as rh
from tests.console.test_public_ranking import freeze_year

PASSWORD = h.PASSWORD
HOSTILE_HOSTNAME = h.XSS  # "<script>alert(1)</script>"
HOSTILE_PACKAGE = '"><img src=x onerror=alert(2)>'
PUBLISHED_YEAR = 2025
# Usernames by role; officer1 belongs to unit D1, officer2 to D2.
USERS = {"admin": "admin", "analyst": "analyst", "officer": "officer1", "other_officer": "officer2",
         "auditor": "auditor"}


@dataclass(frozen=True, slots=True)
class Seeded:
    world: h.World
    year: int = PUBLISHED_YEAR
    triage_alert: int = 0  # D1, high: the triage flow takes it through its workflow
    suppress_alert: int = 0  # D1: the suppression flow snoozes its rule on its host
    remediation_finding: int = 0  # D1, open: opened and closed through the remediation pages
    exception_finding: int = 0  # D1, open: the officer asks for a risk acceptance, the admin approves


def seed(db: Database) -> Seeded:
    """Province P with departments D1 and D2, users of every role, three hosts (one hostile), 2025 published."""
    world = h.seed_world(db)  # units P, D1, D2; admin, officer1, officer2; hosts web01, db02, hostile
    h.add_user(db, USERS["analyst"], "analyst")
    h.add_user(db, USERS["auditor"], "auditor")
    freeze_year(db, PUBLISHED_YEAR, {"D1": 88, "D2": 64.5})
    with db.transaction() as s:
        review.publish(s, year=PUBLISHED_YEAR, by="admin", by_role="admin",
                       now=datetime(PUBLISHED_YEAR + 1, 2, 1, tzinfo=UTC))
    triage = ah.add_alert(db, host_id=world.web01, rule_id="ssh_lnx_brute_force", severity="high",
                          raw="sshd[812]: Failed password for root from 203.0.113.9 port 52144 ssh2")
    suppress = ah.add_alert(db, host_id=world.web01, rule_id="net_any_port_scan", severity="medium",
                            group={"src_ip": "198.51.100.7"})
    remediation = rh.add_finding(db, unit="D1", host_id=world.web01, title="OpenSSL 3.0.11: CVE-2026-0001")
    exception = rh.add_finding(db, unit="D1", host_id=world.web01, location="nginx",
                               title="nginx 1.22.1: CVE-2026-0002")
    return Seeded(world=world, triage_alert=triage, suppress_alert=suppress, remediation_finding=remediation,
                  exception_finding=exception)
