"""Prometheus metrics for ingest (DESIGN.md §7: every rejection counted with a reason)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class IngestMetrics:
    """One registry per app so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batches = Counter("khien_ingest_batches", "Batches accepted", registry=self.registry)
        self.items = Counter("khien_ingest_items", "Items accepted", ["type"], registry=self.registry)
        self.duplicates = Counter("khien_ingest_duplicate_batches", "Replayed batches acknowledged "
                                  "without writing", registry=self.registry)
        self.rejections = Counter("khien_ingest_rejections", "Batches refused, by reason", ["reason"],
                                  registry=self.registry)
        self.latency = Histogram("khien_ingest_seconds", "Time to validate and store one batch",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.enrollments = Counter("khien_enrollments", "Agent enrollments, by outcome", ["outcome"],
                                   registry=self.registry)
