"""Authentication and account events from auth logs and the journal (issue 3).

``syslog`` frames lines, ``sshd`` / ``sudo_su`` / ``accounts`` parse messages, ``parser`` dispatches
by program name and counts, ``tail`` and ``journal`` read new data, ``collector`` ties them together.
"""

from __future__ import annotations

from agent.collectors.authlog.collector import AuthLogCollector, AuthLogError
from agent.collectors.authlog.events import FIELDS
from agent.collectors.authlog.parser import LineParser

__all__ = ["FIELDS", "AuthLogCollector", "AuthLogError", "LineParser"]
