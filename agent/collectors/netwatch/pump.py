"""Feeds captured records to the detectors in a thread, so detection keeps up between collector runs.

The record queue is bounded for memory; draining it continuously (rather than once per collector
interval, which may be an hour) keeps it from overflowing under ordinary traffic.
"""

from __future__ import annotations

import threading
from collections import deque

from agent.collectors.netwatch.detect import ArpSpoof, ArpSpoofDetector, PortScan, PortScanDetector
from agent.collectors.netwatch.sniffer import Sniffer

BATCH = 2_000  # records per detector pass: bounds the time the lock is held
MAX_PENDING_SPOOFS = 1_000
IDLE_S = 0.1  # poll interval when the queue is empty


class Pump:
    """Sniffer queue → detectors; ``take()`` hands over the detections made since the last call."""

    def __init__(self, sniffer: Sniffer, scans: PortScanDetector, arp: ArpSpoofDetector) -> None:
        self.sniffer = sniffer
        self.scans = scans
        self.arp = arp
        self.spoofs: deque[ArpSpoof] = deque()
        self.spoofs_dropped = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="netwatch-pump", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current pass."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def pump_once(self) -> int:
        """Feed one batch of queued records to the detectors; how many there were."""
        # Drain under the lock too: two threads feeding interleaved batches would reorder timestamps.
        with self._lock:
            records = self.sniffer.drain(limit=BATCH)
            if records:
                self.scans.observe(records)
                self._keep(self.arp.feed(records))
        return len(records)

    def take(self) -> tuple[list[PortScan], list[ArpSpoof]]:
        """Feed what is queued right now, then return and forget the pending detections."""
        backlog = self.sniffer.queue.qsize()
        while backlog > 0 and (n := self.pump_once()):
            backlog -= n  # bounded: a flood arriving meanwhile is left to the thread
        with self._lock:
            spoofs = list(self.spoofs)
            self.spoofs.clear()
            return self.scans.flush(), spoofs

    def _keep(self, found: list[ArpSpoof]) -> None:
        for spoof in found:
            if len(self.spoofs) >= MAX_PENDING_SPOOFS:
                self.spoofs_dropped += 1
            else:
                self.spoofs.append(spoof)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.pump_once():
                self._stop.wait(IDLE_S)
