"""Packet capture: a scapy AsyncSniffer thread turning packets into ``PacketRecord``s in a bounded queue.

scapy is imported here only, and only from ``load_scapy()`` — importing the agent (or this module)
never loads it. The kernel-side filter is hand-assembled classic BPF because scapy compiles filter
strings through libpcap/tcpdump, which an agent host may not have.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import socket
import struct
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from agent.collectors.netwatch.detect import PacketRecord
from agent.collectors.netwatch.routes import normalize_mac

log = logging.getLogger(__name__)

CAP_NET_RAW = 13
SO_ATTACH_FILTER = 26
SNAPLEN = 128  # Ethernet + IPv4 (≤ 60) or IPv6 (40) + TCP flags fit; payloads are never needed
LDH, LDB, LDB_X, LDX_IPLEN, AND, JEQ, JSET, RET = 0x28, 0x30, 0x50, 0xB1, 0x54, 0x15, 0x45, 0x06
# Kernel-side filter: ARP; UDP; TCP with SYN set and ACK clear (IPv4 first fragments, IPv6 without
# extension headers). Entries are (opcode, k, jump-if-true label, jump-if-false label) or a label.
FILTER: tuple[str | tuple[int, int, str | None, str | None], ...] = (
    (LDH, 12, None, None),            # ethertype
    (JEQ, 0x0806, "accept", None),
    (JEQ, 0x86DD, "ipv6", None),
    (JEQ, 0x0800, None, "drop"),
    (LDB, 23, None, None),            # IPv4 protocol
    (JEQ, 17, "accept", None),
    (JEQ, 6, None, "drop"),
    (LDH, 20, None, None),            # fragment offset: later fragments carry no TCP header
    (JSET, 0x1FFF, "drop", None),
    (LDX_IPLEN, 14, None, None),      # x = IPv4 header length
    (LDB_X, 27, None, None),          # TCP flags
    (AND, 0x12, None, None),          # SYN|ACK
    (JEQ, 0x02, "accept", "drop"),
    "ipv6",
    (LDB, 20, None, None),            # IPv6 next header
    (JEQ, 17, "accept", None),
    (JEQ, 6, None, "drop"),
    (LDB, 67, None, None),            # TCP flags after the fixed 40-byte header
    (AND, 0x12, None, None),
    (JEQ, 0x02, "accept", "drop"),
    "accept",
    (RET, SNAPLEN, None, None),
    "drop",
    (RET, 0, None, None),
)


def assemble(program: tuple = FILTER) -> list[tuple[int, int, int, int]]:
    """Resolve labels into relative jumps: ``sock_filter`` tuples (code, jt, jf, k)."""
    labels: dict[str, int] = {}
    code: list[tuple[int, int, str | None, str | None]] = []
    for entry in program:
        if isinstance(entry, str):
            labels[entry] = len(code)
        else:
            code.append(entry)

    def jump(at: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - at - 1

    return [(op, jump(i, jt), jump(i, jf), k) for i, (op, k, jt, jf) in enumerate(code)]


class ScapyUnavailable(Exception):
    """scapy is not installed or failed to load."""


def privilege_problem(proc: Path = Path("/proc")) -> str | None:
    """None when this process may open raw sockets (root or CAP_NET_RAW), else why not."""
    if os.geteuid() == 0:
        return None
    try:
        for line in (proc / "self/status").read_text().splitlines():
            if line.startswith("CapEff:") and int(line.split()[1], 16) >> CAP_NET_RAW & 1:
                return None
    except (OSError, ValueError, IndexError):
        pass
    return "needs root or CAP_NET_RAW"


def load_scapy() -> SimpleNamespace:
    """Import the few scapy modules the sniffer needs; ScapyUnavailable says why not."""
    try:
        from scapy.config import conf
        from scapy.layers.inet import IP, TCP, UDP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import ARP
        from scapy.sendrecv import AsyncSniffer
    except ImportError as exc:
        raise ScapyUnavailable("scapy not installed" if "scapy" in str(exc) else f"scapy failed: {exc}") from None
    except OSError as exc:  # e.g. a broken libc probe while scapy configures itself
        raise ScapyUnavailable(f"scapy failed: {exc}") from None
    return SimpleNamespace(conf=conf, IP=IP, IPv6=IPv6, TCP=TCP, UDP=UDP, ARP=ARP, AsyncSniffer=AsyncSniffer)


def attach_bpf(sock: socket.socket) -> None:
    """Let the kernel drop everything but ARP, UDP and bare SYNs before Python ever sees it."""
    program = assemble()
    insns = (ctypes.c_uint8 * (8 * len(program)))()
    for i, ins in enumerate(program):
        struct.pack_into("HBBI", insns, i * 8, *ins)
    prog = struct.pack("HL", len(program), ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)


def to_record(pkt: Any, scapy: SimpleNamespace) -> PacketRecord | None:
    """The compact record of an ARP, TCP or UDP packet; None for anything else."""
    ts = float(pkt.time)
    if scapy.ARP in pkt:
        arp = pkt[scapy.ARP]
        return PacketRecord(ts=ts, proto="arp", src_ip=str(arp.psrc), dst_ip=str(arp.pdst),
                            arp_op=int(arp.op), src_mac=normalize_mac(str(arp.hwsrc)) or "")
    ip_layer = scapy.IP if scapy.IP in pkt else scapy.IPv6 if scapy.IPv6 in pkt else None
    if ip_layer is None:
        return None
    ip = pkt[ip_layer]
    for proto, layer in (("tcp", scapy.TCP), ("udp", scapy.UDP)):
        if layer in ip:
            l4 = ip[layer]
            flags = str(l4.flags) if proto == "tcp" else ""
            return PacketRecord(ts=ts, proto=proto, src_ip=str(ip.src), dst_ip=str(ip.dst),
                                src_port=int(l4.sport), dst_port=int(l4.dport), flags=flags)
    return None


class Sniffer:
    """Captures on one interface in a background thread; ``drain()`` hands over what it saw."""

    def __init__(self, interface: str, *, queue_max: int = 20_000, promisc: bool = False) -> None:
        self.interface = interface
        self.promisc = promisc
        self.queue: queue.Queue[PacketRecord] = queue.Queue(maxsize=queue_max)
        self.dropped = 0  # records lost because the queue was full
        self.malformed = 0
        self.filtered_in_kernel = False
        self._scapy: SimpleNamespace | None = None
        self._sniffer: Any = None
        self._started = threading.Event()

    def start(self, timeout: float = 5.0) -> None:
        """Open the capture socket here (errors surface to the caller), then sniff in a thread."""
        self._scapy = scapy = load_scapy()
        sock = scapy.conf.L2socket(iface=self.interface, promisc=self.promisc)  # drops our own outgoing
        try:
            attach_bpf(sock.ins)
            self.filtered_in_kernel = True
        except OSError:
            self.filtered_in_kernel = False  # still correct: to_record() filters in Python
        self._sniffer = scapy.AsyncSniffer(opened_socket=sock, prn=self._on_packet, store=False,
                                           started_callback=self._started.set)
        self._sniffer.start()
        self._started.wait(timeout)

    @property
    def running(self) -> bool:
        return bool(self._sniffer and self._sniffer.running and self._sniffer.thread.is_alive())

    @property
    def error(self) -> str | None:
        """Why the sniffer thread died, if it did."""
        exc = self._sniffer.exception if self._sniffer else None
        return f"{type(exc).__name__}: {exc}" if exc else None

    def stop(self) -> None:
        """Stop the thread and close the socket; safe to call twice."""
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is None:
            return
        try:
            if sniffer.running:
                sniffer.stop(join=True)
        except Exception as exc:  # noqa: BLE001 - scapy re-raises the capture thread's error on stop
            log.debug("sniffer on %s stopped with %s", self.interface, exc)
        finally:
            opened = sniffer.kwargs.get("opened_socket")
            if opened is not None:
                opened.close()

    def drain(self, limit: int | None = None) -> list[PacketRecord]:
        """Everything queued so far (at most ``limit``), oldest first."""
        out: list[PacketRecord] = []
        while limit is None or len(out) < limit:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def _on_packet(self, pkt: Any) -> None:
        try:
            rec = to_record(pkt, self._scapy)
        except (AttributeError, IndexError, TypeError, ValueError):  # a mangled packet must not kill the thread
            self.malformed += 1
            return
        if rec is None:
            return
        try:
            self.queue.put_nowait(rec)
        except queue.Full:
            self.dropped += 1
