"""Listening sockets: compared with ``ss`` and with sockets this test opens itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil

from agent.collectors.inventory.ports import collect_listening_ports


def ss_listening_tcp() -> set[tuple[str, int]]:
    """(address, port) of listening TCP sockets per ``ss -tlnH``, addresses normalised like psutil's."""
    found = set()
    out = subprocess.run(["ss", "-tlnH"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        address = address.strip("[]").split("%")[0]  # [::1] and 127.0.0.53%lo
        found.add(("*" if address in ("*", "0.0.0.0", "::") else address, int(port)))
    return found


def ours_tcp() -> set[tuple[str, int]]:
    return {("*" if r["address"] in ("0.0.0.0", "::") else r["address"], r["port"])
            for r in collect_listening_ports() if r["proto"] == "tcp"}


def test_listening_tcp_matches_ss():
    # Other processes may open or close listeners meanwhile: what both ss runs saw must be ours,
    # and ours must be something one of them saw.
    before = ss_listening_tcp()
    mine = ours_tcp()
    after = ss_listening_tcp()
    assert before & after <= mine <= before | after
    assert {p for _a, p in before & after} <= {p for _a, p in mine}


def test_own_listening_socket_shows_with_pid_and_process_name():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        rows = [r for r in collect_listening_ports() if r["port"] == port and r["proto"] == "tcp"]
    assert rows == [{"proto": "tcp", "family": "ipv4", "address": "127.0.0.1", "port": port,
                     "pid": os.getpid(), "process": psutil.Process().name()}]


def test_bound_udp_and_ipv6_are_reported_connected_udp_and_tcp_clients_are_not():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as bound, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as connected, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        bound.bind(("::1", 0))
        connected.connect(("127.0.0.1", 9))
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            udp_port, connected_port = bound.getsockname()[1], connected.getsockname()[1]
            client_port = client.getsockname()[1]
            rows = collect_listening_ports()
    keys = {(r["proto"], r["family"], r["address"], r["port"]) for r in rows}
    assert ("udp", "ipv6", "::1", udp_port) in keys
    assert not any(r["port"] == connected_port and r["proto"] == "udp" for r in rows)
    assert not any(r["port"] == client_port for r in rows)


PREFORK_SERVER = """
import os, socket, sys, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
if os.fork() == 0:
    time.sleep(30)
    os._exit(0)
print(listener.getsockname()[1], flush=True)
time.sleep(30)
"""


def test_prefork_socket_is_one_row_owned_by_the_master():
    # Master and forked worker share one listening socket, like nginx or gunicorn. psutil attributes
    # it to the newest holder; the row must name the master so worker recycling does not churn.
    master = subprocess.Popen([sys.executable, "-c", PREFORK_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(master.stdout.readline())
        workers = psutil.Process(master.pid).children()
        master_name = psutil.Process(master.pid).name()
        rows = [r for r in collect_listening_ports() if r["port"] == port]
    finally:
        for proc in [*workers, master]:
            proc.kill()
        master.wait()
    assert len(workers) == 1
    assert rows == [{"proto": "tcp", "family": "ipv4", "address": "127.0.0.1", "port": port,
                     "pid": master.pid, "process": master_name}]


def test_rows_are_unique_per_endpoint():
    keys = [(r["proto"], r["family"], r["address"], r["port"]) for r in collect_listening_ports()]
    assert len(keys) == len(set(keys))
