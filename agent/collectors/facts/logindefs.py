"""Password aging and account defaults from /etc/login.defs.

Keys of the result:
  available: bool (the file was read); error: str when not
  settings: {KEY: value as written} for every setting (upper-case keys)
  pass_max_days, pass_min_days, pass_warn_age, pass_min_len, uid_min, uid_max, login_retries,
  login_timeout: int | None
  encrypt_method: str | None (SHA512, YESCRYPT, ...); umask: str | None; usergroups_enab: bool | None
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.facts._common import Run, key_values, read_file, to_int, unavailable, yes

PATH = "/etc/login.defs"
INT_KEYS = ("PASS_MAX_DAYS", "PASS_MIN_DAYS", "PASS_WARN_AGE", "PASS_MIN_LEN", "UID_MIN", "UID_MAX",
            "LOGIN_RETRIES", "LOGIN_TIMEOUT")


def collect_logindefs(root: Path = Path("/"), run: Run | None = None) -> dict:
    """Parsed login.defs (see the module docstring for the keys)."""
    text, problem = read_file(root, PATH)
    if text is None:
        return unavailable(f"{PATH}: {problem}", settings={})
    settings = dict(list(key_values(text).items())[:300])
    out: dict = {"available": True, "settings": settings}
    for key in INT_KEYS:
        out[key.lower()] = to_int(settings.get(key))
    out["encrypt_method"] = settings.get("ENCRYPT_METHOD")
    out["umask"] = settings.get("UMASK")
    out["usergroups_enab"] = yes(settings.get("USERGROUPS_ENAB"))
    return out
