"""Background jobs (APScheduler): the nightly re-match of every host against the feeds, the scan tick
that starts scans of units whose addresses are due (at most ``scan_concurrency`` at once), the daily
score computation, which also freezes the month's snapshot once its snapshot day has ended, and the
match of hosts whose inventories changed before the feed index was ready.

Scans run in their own thread pool, not in APScheduler's, so a long scan never delays the nightly
match, and a unit is never scanned twice at the same time.

With several server processes on one database (collector/leader.py) the jobs are of two kinds:

- every process runs ``match-requested``: it keeps this process's feed index warm and matches the
  hosts whose matching this process's ingest deferred (those requests live in its memory);
- only the leader runs the singleton jobs (``lead()`` adds them, ``step_down()`` removes them; one
  scheduler lives as long as the process, because APScheduler cannot start again after a shutdown).

Each run of a singleton job is fenced besides: it takes the job's advisory lock and records the tick
it ran for (the scheduled time, epoch seconds) in ``pipeline_cursors`` as ``job:<id>``, so a change of
leader at the wrong moment runs no tick twice. Interval ticks are aligned to the epoch, so every
process agrees on them. A new leader that finds a daily job's latest tick missed (the server was down,
or leadership was changing at that minute) runs it at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from collector import leader
from collector.alerts import service as cursors
from collector.db import Database
from collector.errors import Conflict
from collector.events import retention
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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # interval jobs fire on multiples of their period since here
PER_PROCESS = "match-requested"
CATCH_UP = "-catch-up"


class Jobs:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.scheduler = BackgroundScheduler(timezone=str(scans.LOCAL_TZ))
        self.pool = ThreadPoolExecutor(max_workers=settings.scan_concurrency, thread_name_prefix="khien-scan")
        self._running: set[int] = set()
        self._lock = threading.Lock()
        # A job's scheduled run and its catch-up run never overlap in this process (on SQLite the
        # advisory lock that keeps other processes out is not there).
        self._job_locks = {job_id: threading.Lock() for job_id in leader.JOB_LOCKS}
        # (job, outcome) -> count: ran, already_ran (this tick, by any process), locked (running
        # elsewhere), failed. Shown in /metrics, so a skipped run is never silent.
        self.runs: dict[tuple[str, str], int] = {}
        # A singleton job: (cron (hour, minute) in local time) or (interval seconds), and its work.
        score_every = settings.score_every_s
        self.singletons: dict[str, tuple[tuple[int, int] | float, Callable[[], None]]] = {
            "nightly-match": ((settings.match_hour, 0), self.nightly_match),
            "daily-scores": (score_every if score_every > 0 else (settings.score_hour, 15), self.daily_scores),
            "scan-tick": (float(settings.scan_tick_s), self.scan_tick),
            "event-retention": ((3, 30), self.event_retention),
        }

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """The per-process job; the singleton jobs wait for ``lead()``."""
        # Builds the feed index at start (and after imports), then matches hosts ingest deferred.
        self.scheduler.add_job(self.match_requested, "interval", seconds=self.settings.match_tick_s,
                               id=PER_PROCESS, max_instances=1, coalesce=True, next_run_time=utcnow())
        self.scheduler.start()

    def lead(self) -> None:
        """This process was elected: schedule the singleton jobs, and run a daily job whose tick was missed."""
        now = utcnow()
        for job_id, (when, _work) in self.singletons.items():
            if isinstance(when, tuple):  # a daily run still happens if the machine was busy at that minute
                trigger, grace = CronTrigger(hour=when[0], minute=when[1], timezone=scans.LOCAL_TZ), 3600
            else:  # a late interval run would stand for the next tick: skipped, the next one comes soon
                trigger, grace = IntervalTrigger(seconds=when, start_date=EPOCH), max(1, int(when // 2))
            self.scheduler.add_job(self.run_scheduled, trigger, args=(job_id,), id=job_id, max_instances=1,
                                   coalesce=True, replace_existing=True, misfire_grace_time=grace)
            if isinstance(when, tuple):
                tick = self.latest_tick(job_id, now)
                with self.db.session() as session:
                    last = cursors.get_cursor(session, name=_cursor(job_id))
                # Only a job that has run on this database before: a new one waits for its first time.
                if 0 < last < tick:
                    log.info("%s missed its run at %s: running it now", job_id, _at(tick))
                    self.scheduler.add_job(self.run_scheduled, "date", args=(job_id, tick), id=job_id + CATCH_UP,
                                           run_date=now, replace_existing=True, misfire_grace_time=None)

    def step_down(self) -> None:
        """No longer the leader: no new singleton runs (a run under way finishes under its own lock)."""
        for job in self.scheduler.get_jobs():
            if job.id != PER_PROCESS:
                job.remove()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- a singleton run, once per tick across processes ---------------------------------------------

    def latest_tick(self, job_id: str, now: datetime) -> int:
        """The job's scheduled time (epoch seconds) this run stands for: the latest one at ``now``."""
        when = self.singletons[job_id][0]
        if isinstance(when, tuple):
            local = now.astimezone(scans.LOCAL_TZ)
            at = local.replace(hour=when[0], minute=when[1], second=0, microsecond=0)
            return int((at if at <= local else at - timedelta(days=1)).timestamp())
        # The nearest aligned time: a run starts a few milliseconds after it, never a half period.
        return int(round(now.timestamp() / when) * when)

    def run_scheduled(self, job_id: str, tick: int | None = None) -> str:
        """Run a singleton job unless a process runs it now or already ran it for this tick; the outcome."""
        tick = tick if tick is not None else self.latest_tick(job_id, utcnow())
        here = self._job_locks[job_id]
        if not here.acquire(blocking=False):
            return self._count(job_id, "locked")
        try:
            return self._run_fenced(job_id, tick)
        finally:
            here.release()

    def _run_fenced(self, job_id: str, tick: int) -> str:
        with leader.exclusive(self.db, leader.JOB_LOCKS[job_id]) as held:
            if not held:
                return self._count(job_id, "locked")
            with self.db.session() as session:
                if cursors.get_cursor(session, name=_cursor(job_id)) >= tick:
                    return self._count(job_id, "already_ran")
            try:
                self.singletons[job_id][1]()
            except Exception:
                self._count(job_id, "failed")
                raise  # APScheduler logs it; the tick stays unrecorded, so the next leader may run it
            # Recorded while the lock is held: the next process to get it sees this tick done.
            with self.db.transaction() as session:
                cursors.set_cursor(session, name=_cursor(job_id), position=tick)
        return self._count(job_id, "ran")

    def _count(self, job_id: str, outcome: str) -> str:
        with self._lock:
            self.runs[(job_id, outcome)] = self.runs.get((job_id, outcome), 0) + 1
        if outcome in ("locked", "already_ran"):
            log.info("%s: not run (%s)", job_id, outcome.replace("_", " "))
        return outcome

    # --- the jobs --------------------------------------------------------------------------------------

    def event_retention(self) -> None:
        """Months ahead made (PostgreSQL), then events past the retention period removed (docs/retention.md)."""
        result = retention.run_retention(self.db, now=utcnow(), keep_days=self.settings.event_keep_days)
        log.info("%s", result.summary())

    def nightly_match(self) -> None:
        report = matching.match_all(self.db, now=utcnow())
        log.info("nightly match: %s", report.as_dict())

    def daily_scores(self) -> None:
        """Yesterday's indicators for every unit, then the monthly snapshot if one is due."""
        now = utcnow()
        day = activity.local_day(now) - timedelta(days=1)
        with self.db.transaction() as session:
            rows = scoring.store_day(session, day=day, now=now)
        frozen = self._freeze_due(now)
        log.info("scores of %s: %d values%s", day, rows, f"; {frozen} snapshot frozen" if frozen else "")

    def _freeze_due(self, now: datetime) -> str | None:
        """Freeze the month if due; frozen meanwhile by someone else (``khien score freeze``) counts as done."""
        try:
            with self.db.transaction() as session:
                return scoring.freeze_due(session, now=now)
        except Conflict as exc:
            log.info("monthly snapshot: %s", exc)
        except Exception as exc:
            if not _frozen_meanwhile(exc):
                raise
            log.info("monthly snapshot: frozen meanwhile by another process")
        return None

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
            # A unit's scan that a former leader still runs keeps this one out (any process).
            with leader.exclusive(self.db, leader.SCAN_LOCK_BASE + unit_id) as held:
                if not held:
                    log.info("scheduled scan of %s: already running in another process", code)
                    return
                run = runner.run_due(self.db, unit_code=code, profile=profile, deadline=deadline,
                                     max_addresses=self.settings.scan_max_addresses)
            if run is not None:
                log.info("scheduled scan of %s: run %s %s", code, run.id, run.status)
        except Exception:  # a failing scan must not kill the pool thread or the other units' scans
            log.exception("scheduled scan of %s failed", code)
        finally:
            with self._lock:
                self._running.discard(unit_id)


def _frozen_meanwhile(exc: Exception) -> bool:
    """A unique violation on the snapshots between our check and our insert: SQLAlchemy's IntegrityError,
    or the driver's own error from the bulk COPY (collector/bulk.py), which SQLAlchemy does not wrap."""
    unique = isinstance(exc, IntegrityError) or getattr(exc, "sqlstate", None) == "23505"
    return unique and "score_snapshots" in str(exc)


def _cursor(job_id: str) -> str:
    return f"job:{job_id}"


def _at(tick: int) -> str:
    return datetime.fromtimestamp(tick, scans.LOCAL_TZ).isoformat(timespec="minutes")
