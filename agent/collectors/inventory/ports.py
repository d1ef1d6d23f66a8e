"""The ``listening_ports`` section: TCP sockets in LISTEN and unconnected bound UDP sockets."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil

from agent.collectors.inventory._files import clip

FIELDS: tuple[str, ...] = ("proto", "family", "address", "port", "pid", "process")

FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
PROTOS = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}
MAX_PORTS = 10_000
MAX_PARENT_HOPS = 8  # prefork trees are shallow; the bound only guards against odd ppid loops


def is_listening(conn) -> bool:
    """TCP in LISTEN, or UDP bound locally with no peer (a connected UDP socket is a client)."""
    if conn.type == socket.SOCK_STREAM:
        return conn.status == psutil.CONN_LISTEN
    return conn.type == socket.SOCK_DGRAM and bool(conn.laddr) and not conn.raddr


def process_name(pid: int | None, cache: dict[int, str | None]) -> str | None:
    """The process name, or None when it is gone or hidden from us (not root, hidepid)."""
    if pid is None:
        return None
    if pid not in cache:
        try:
            cache[pid] = clip(psutil.Process(pid).name()) or None
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            cache[pid] = None
    return cache[pid]


def socket_key(conn) -> tuple[str, str, str, int]:
    """(proto, family, address, port): what identifies a listening endpoint."""
    return (PROTOS[conn.type], FAMILIES[conn.family], conn.laddr.ip, conn.laddr.port)


Owner = tuple[int | None, int]  # (pid, fd) as psutil reports it; fd is -1 when unknown


def listening_sockets() -> dict[tuple[str, str, str, int], Owner]:
    """Listening endpoint -> the (pid, fd) psutil attributes it to: the highest pid holding it."""
    owners: dict[tuple[str, str, str, int], Owner] = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.family in FAMILIES and conn.type in PROTOS and is_listening(conn):
            owners.setdefault(socket_key(conn), (conn.pid, conn.fd))
    return owners


def fd_target(pid: int, fd: int) -> str | None:
    """What /proc/PID/fd/FD points at, e.g. ``socket:[12345]``."""
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None


def holds(pid: int, target: str) -> bool:
    """True when process ``pid`` has an open descriptor on ``target``."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    return any(fd_target(pid, int(fd)) == target for fd in fds)


def stable_owner(owner: Owner, names: dict[int, str | None]) -> int | None:
    """The topmost same-named ancestor that holds the same socket: a prefork server's master rather
    than whichever worker psutil saw last (workers recycle; a changing pid would churn the hash)."""
    pid, fd = owner
    target = fd_target(pid, fd) if pid is not None and fd >= 0 else None
    if pid is None or target is None:
        return pid
    name = process_name(pid, names)
    for _depth in range(MAX_PARENT_HOPS):
        try:
            parent = psutil.Process(pid).ppid()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return pid
        if parent <= 1 or process_name(parent, names) != name or not holds(parent, target):
            return pid
        pid = parent
    return pid


def collect_listening_ports(root: Path = Path("/")) -> list[dict]:
    """One row per listening endpoint, with the owning pid and process name when visible."""
    del root  # sockets come from the kernel via psutil; kept for a uniform section signature
    names: dict[int, str | None] = {}
    rows = []
    for (proto, family, address, port), owner in sorted(listening_sockets().items()):
        pid = stable_owner(owner, names)
        rows.append({"proto": proto, "family": family, "address": clip(address), "port": port,
                     "pid": pid, "process": process_name(pid, names)})
    return rows[:MAX_PORTS]
