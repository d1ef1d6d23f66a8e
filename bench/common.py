"""What the benchmarks share: peak memory per phase, a fresh database, cProfile text."""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import resource
from pathlib import Path

from sqlalchemy import text


def maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def reset_peak() -> None:
    """Reset VmHWM (Linux), so each phase reports its own peak RSS."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def phase_mem() -> dict[str, float]:
    return {"rss_mb": _status_mb("VmRSS"), "phase_peak_rss_mb": _status_mb("VmHWM"), "process_maxrss_mb": maxrss_mb()}



def fresh_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()


def profile_text(prof: cProfile.Profile, n: int = 45) -> str:
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("cumulative").print_stats(n)
    st.sort_stats("tottime").print_stats(25)
    return buf.getvalue()


def print_rows(rows: list[tuple[str, object]]) -> None:
    """A two-column table of (label, value) on stdout, labels aligned."""
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
