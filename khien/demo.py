"""``khien demo``: seed a demo province (with a synthetic history: ``khien.demo_history``), start the server
and enroll an agent on this very machine."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from collector import security
from collector.agents import service as agents
from collector.db import Database
from collector.settings import Settings
from collector.units import service as units
from collector.units.models import Unit, UnitCreate
from collector.users import service as users
from khien.demo_history import seed_history
from khien.serve import console_url, serve

log = logging.getLogger("khien.demo")

PROVINCE = UnitCreate(code="DEMO", name="Tỉnh Demo (dữ liệu minh hoạ)", kind="province")
DEPARTMENT = UnitCreate(code="DEMO-SKHCN", name="Sở Khoa học và Công nghệ (demo)", kind="department",
                        parent_code="DEMO")
ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Seeded:
    admin_password: str | None  # None when the admin already existed (its password was shown then)
    enrollment_token: str


def seed(db: Database) -> Seeded:
    """Create the demo units and admin (once) and a fresh single-use enrollment token."""
    with db.transaction() as session:
        for data in (PROVINCE, DEPARTMENT):
            unit = session.exec(select(Unit).where(Unit.code == data.code)).first()
            if unit is None:
                unit = units.create(session, data=data)
            if not unit.synthetic:
                unit.synthetic = True  # demo data, shown as such on every page and export
                session.add(unit)
        password = None
        if users.get_by_username(session, username=ADMIN) is None:
            password = security.new_secret(12)
            users.create(session, username=ADMIN, password=password, role="admin", unit_code=None)
        token = agents.create_enrollment_token(session, unit_code=DEPARTMENT.code,
                                               expires_in=timedelta(hours=1), max_uses=1)
    return Seeded(admin_password=password, enrollment_token=token)


def agent_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent", *args]


def run_demo(settings: Settings, *, seed_only: bool) -> None:
    db = Database(settings.database_url)
    db.upgrade()
    seeded = seed(db)
    seed_history(db, province_code=PROVINCE.code)  # once: nothing happens when the history exists
    _print_credentials(settings, seeded)
    if seed_only:
        db.dispose()
        return
    state_dir = (settings.data_dir / "agent").resolve()
    agent_proc: list[subprocess.Popen] = []

    async def start_agent() -> None:
        url = console_url(settings).rstrip("/")
        enroll = await asyncio.create_subprocess_exec(
            *agent_command("enroll", "--server", url, "--token", seeded.enrollment_token,
                           "--state-dir", str(state_dir)))
        if await enroll.wait() != 0:
            log.error("the local agent could not enroll; the server keeps running")
            return
        agent_proc.append(subprocess.Popen(agent_command("run", "--state-dir", str(state_dir))))
        print(f"\nKhiên demo is running. Console: {console_url(settings)}  (Ctrl-C stops server and agent)\n",
              flush=True)

    try:
        serve(settings, on_started=start_agent, db=db)
    finally:
        _stop(agent_proc)


def _print_credentials(settings: Settings, seeded: Seeded) -> None:
    lines = ["", "=== Khiên demo (synthetic province DEMO — not real data) ==="]
    if seeded.admin_password:
        lines += [f"Admin user: {ADMIN}", f"Password:   {seeded.admin_password}   (shown once; keep it)"]
    else:
        lines.append(f"Admin user: {ADMIN} (already created; its password was shown on the first run)")
    lines += [f"Data dir:   {Path(settings.data_dir).resolve()}", f"Console:    {console_url(settings)}", ""]
    print("\n".join(lines), flush=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

