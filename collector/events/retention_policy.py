"""How long events are kept: the minimum the annual ranking's evidence needs, the default, and the check.

Light on purpose (no SQLAlchemy): settings and the ``khien`` command line read it at start-up.

The scores never read the events table: every indicator comes from alerts, findings, check results,
host activity, scans and incidents, which keep their own rows. Events are the evidence behind them:
the log lines that raised an alert counted in A7/A8, a host's change history, the facts it reported
on a date. A ranking year runs from the January snapshot's window (30 days up to 14 January, so from
16 December of the year before) to the December snapshot; its last appeals close ten working days
after 14 December and are decided in January. Keeping 400 days keeps the whole ranking year just
closed until at least 18 January (leap years included), while its appeals are heard, and the whole
current year at any time. The default, 450 days, keeps the closed year whole until early March, by
when a province publishes its ranking. docs/retention.md has the reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.errors import InvalidInput

MIN_KEEP_DAYS = 400
DEFAULT_KEEP_DAYS = 450
MAX_KEEP_DAYS = 36_500  # a hundred years: beyond it the cutoff date itself overflows
ENV_VAR = "KHIEN_EVENT_RETENTION_DAYS"


def check_keep_days(value: object) -> int:
    """``value`` as a number of days to keep, or InvalidInput saying why it is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"event retention must be a whole number of days, not {value!r}")
    if value < MIN_KEEP_DAYS:
        raise InvalidInput(
            f"event retention of {value} days refused: at least {MIN_KEEP_DAYS} days are kept so the events "
            "behind the ranking year just closed (from 16 December of the year before) stay until its "
            "appeals are decided")
    if value > MAX_KEEP_DAYS:
        raise InvalidInput(f"event retention of {value} days refused: at most {MAX_KEEP_DAYS}")
    return value


def configured_keep_days(environ: Mapping[str, str]) -> int:
    """The installation's retention: ``KHIEN_EVENT_RETENTION_DAYS`` if set (checked), else the default.
    The server's daily job and ``khien db retention`` read it the same way, so a manual run never keeps
    less than the server would."""
    raw = (environ.get(ENV_VAR) or "").strip()
    if not raw:
        return DEFAULT_KEEP_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise InvalidInput(f"{ENV_VAR} must be a whole number of days, not {raw!r}") from None
    try:
        return check_keep_days(days)
    except InvalidInput as exc:
        raise InvalidInput(f"{ENV_VAR}: {exc}") from None
