"""Syslog line framing: RFC 3164, RFC 5424 and rsyslog's ISO-8601 (high-precision) prefix."""

from __future__ import annotations

import re
from typing import NamedTuple

from agent.collectors.authlog.events import int_or_none


class Record(NamedTuple):
    """One framed log line: where and when it was logged, by which program, and the message."""

    log_ts: str
    host: str | None
    program: str
    pid: int | None
    message: str


# Tag is "prog[pid]:" or "prog:"; programs may contain dots, dashes, slashes (e.g. "sshd-session").
_TAG = r"(?P<prog>[^\s\[\]:]{1,64})(?:\[(?P<pid>\d{1,10})\])?:\s?(?P<msg>.*)"
_RFC3164 = re.compile(
    r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?) (?P<host>\S+) " + _TAG, re.S)
_ISO = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
    + _TAG, re.S)
_PRI = re.compile(r"<\d{1,3}>")
# RFC 5424: <PRI>1 TS HOST APP PROCID MSGID SD [MSG]; SD is "-" or bracketed elements.
_RFC5424 = re.compile(
    r"<\d{1,3}>1 (?P<ts>\S+) (?P<host>\S+) (?P<prog>\S{1,48}) (?P<pid>\S{1,128}) \S{1,32} "
    r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?", re.S)


def frame(line: str) -> Record | None:
    """Split a syslog line into its parts, or None when it is not a syslog line."""
    if line.startswith("<"):
        pri = _PRI.match(line)
        if pri is None:
            return None
        if line.startswith("1 ", pri.end()):
            return _rfc5424(line)
        line = line[pri.end():]  # BSD syslog with a priority, as sent over the network
    match = (_ISO if line[:1].isdigit() else _RFC3164).match(line)
    if match is None:
        return None
    return Record(match["ts"], _host(match["host"]), match["prog"], int_or_none(match["pid"]), match["msg"])


def _rfc5424(line: str) -> Record | None:
    match = _RFC5424.match(line)
    if match is None:
        return None
    pid = match["pid"]
    msg = (match["msg"] or "").removeprefix("\ufeff")  # RFC 5424 allows a UTF-8 BOM before MSG
    return Record(match["ts"], _host(match["host"]), match["prog"], int_or_none(pid), msg)


def _host(host: str) -> str | None:
    return None if host == "-" else host
