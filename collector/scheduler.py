"""Background jobs (APScheduler): the nightly re-match of every host against the feeds, the scan tick
that starts scans of units whose addresses are due (at most ``scan_concurrency`` at once), and the
daily score computation, which also freezes the month's snapshot once its snapshot day has ended.

Scans run in their own thread pool, not in APScheduler's, so a long scan never delays the nightly
match, and a unit is never scanned twice at the same time.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import select

from collector.db import Database
from collector.scans import runner
from collector.scans import service as scans
from collector.scans.models import ScanPolicy, UnitRange
from collector.scoring import activity
from collector.scoring import service as scoring
from collector.settings import Settings
from collector.types import utcnow
from collector.units.models import Unit
from collector.vulns import matching

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.scheduler = BackgroundScheduler(timezone=str(scans.LOCAL_TZ))
        self.pool = ThreadPoolExecutor(max_workers=settings.scan_concurrency, thread_name_prefix="khien-scan")
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self.scheduler.add_job(self.nightly_match, "cron", hour=self.settings.match_hour, minute=0,
                               id="nightly-match", max_instances=1, coalesce=True)
        self.scheduler.add_job(self.daily_scores, "cron", hour=self.settings.score_hour, minute=15,
                               id="daily-scores", max_instances=1, coalesce=True)
        self.scheduler.add_job(self.scan_tick, "interval", seconds=self.settings.scan_tick_s, id="scan-tick",
                               max_instances=1, coalesce=True)
        # Builds the feed index at start (and after imports), then matches hosts ingest deferred.
        self.scheduler.add_job(self.match_requested, "interval", seconds=self.settings.match_tick_s,
                               id="match-requested", max_instances=1, coalesce=True, next_run_time=utcnow())
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def nightly_match(self) -> None:
        report = matching.match_all(self.db, now=utcnow())
        log.info("nightly match: %s", report.as_dict())

    def daily_scores(self) -> None:
        """Yesterday's indicators for every unit, then the monthly snapshot if one is due."""
        now = utcnow()
        day = activity.local_day(now) - timedelta(days=1)
        with self.db.transaction() as session:
            rows = scoring.store_day(session, day=day, now=now)
        with self.db.transaction() as session:
            frozen = scoring.freeze_due(session, now=now)
        log.info("scores of %s: %d values%s", day, rows, f"; {frozen} snapshot frozen" if frozen else "")

    def match_requested(self) -> None:
        """Keep the feed index warm; match the hosts whose inventories changed while it was not."""
        with self.db.session() as session:
            matching.load_index(session)
            hosts = matching.take_requests(session)
        if hosts:
            with self.db.transaction() as session:
                report = matching.match(session, now=utcnow(), host_ids=hosts)
            log.info("matched %d hosts after inventory changes: %s", len(hosts), report.findings)

    def scan_tick(self) -> None:
        """Start a scan for every unit inside its window with addresses due and no scan running."""
        now = utcnow()
        with self.db.transaction() as session:
            unit_ids = set(session.exec(select(UnitRange.unit_id).where(UnitRange.exclude.is_(False))).all())
            policies = {p.unit_id: p for p in session.exec(select(ScanPolicy)).all()}
            codes = dict(session.exec(select(Unit.id, Unit.code).where(Unit.id.in_(unit_ids))).all())
        for unit_id, code in codes.items():
            policy = policies.get(unit_id) or ScanPolicy(unit_id=unit_id)
            if not policy.enabled:
                continue
            closes = scans.window_end(policy.windows, now)
            if closes is False:
                continue
            with self._lock:
                if unit_id in self._running:
                    continue
                self._running.add(unit_id)
            deadline = None if closes is True else runner.monotonic_deadline(closes)
            self.pool.submit(self._scan, unit_id, code, policy.profile, deadline)

    def _scan(self, unit_id: int, code: str, profile: str, deadline: float | None) -> None:
        try:
            run = runner.run_due(self.db, unit_code=code, profile=profile, deadline=deadline,
                                 max_addresses=self.settings.scan_max_addresses)
            if run is not None:
                log.info("scheduled scan of %s: run %s %s", code, run.id, run.status)
        except Exception:  # a failing scan must not kill the pool thread or the other units' scans
            log.exception("scheduled scan of %s failed", code)
        finally:
            with self._lock:
                self._running.discard(unit_id)
