"""The ``users`` and ``groups`` sections from /etc/passwd, /etc/shadow and /etc/group.

Password hashes never leave ``password_status``: the shadow file is reduced to a status word and the
aging numbers line by line, and the hash string is dropped before anything is stored.

password_status mapping (schema: set | locked | empty | none | unknown):
  "" -> empty; starts with "!" or "*" (including a lone "*", "!", "!!" and "*LK*") -> locked, i.e. no
  password login is possible; any other hash -> set. Without a shadow entry: shadow unreadable or
  passwd says "x" -> unknown; a hash kept in passwd itself (pre-shadow systems) is classified as above.
"""

from __future__ import annotations

from pathlib import Path

from agent.collectors.inventory._files import clip, read_text, to_int

USER_FIELDS: tuple[str, ...] = (
    "name", "uid", "gid", "gecos", "home", "shell", "password_status", "last_change_days",
    "min_days", "max_days", "warn_days", "inactive_days", "expire_days",
)
GROUP_FIELDS: tuple[str, ...] = ("name", "gid", "members")
# shadow(5) fields 3-8, in order
AGING_FIELDS = ("last_change_days", "min_days", "max_days", "warn_days", "inactive_days", "expire_days")
SHADOW_PLACEHOLDER = "x"  # passwd's password field when the real one lives in /etc/shadow
MAX_ROWS = 20_000
MAX_MEMBERS = 10_000


def password_status(secret: str) -> str:
    """Classify a password field without keeping it (see the module docstring for the mapping)."""
    if secret == "":
        return "empty"
    if secret[0] in "!*":
        return "locked"
    return "set"


def entries(text: str, min_fields: int) -> list[list[str]]:
    """Colon-separated records, skipping comments, NIS ``+``/``-`` lines and short lines."""
    records = []
    for line in text.splitlines():
        if not line or line[0] in "#+-":
            continue
        parts = line.split(":")
        if len(parts) >= min_fields and parts[0]:
            records.append(parts)
    return records


def shadow_facts(root: Path) -> dict[str, dict] | None:
    """User name -> password_status and aging ints; None when /etc/shadow cannot be read."""
    text = read_text(root, "/etc/shadow")
    if text is None:
        return None
    facts: dict[str, dict] = {}
    for parts in entries(text, min_fields=2):
        aging = (parts[2:8] + [""] * 6)[:6]
        facts[parts[0]] = {"password_status": password_status(parts[1]),
                           **{field: to_int(value) for field, value in zip(AGING_FIELDS, aging, strict=True)}}
    return facts


def user_row(parts: list[str], shadow: dict[str, dict] | None) -> dict | None:
    """One passwd record as a row; None when uid/gid are not valid numbers."""
    name, secret, uid, gid, gecos, home, shell = parts[:7]
    uid_n, gid_n = to_int(uid), to_int(gid)
    if uid_n is None or gid_n is None or uid_n < 0 or gid_n < 0:
        return None
    facts = (shadow or {}).get(name)
    if facts is None:
        # No shadow entry: a hash kept in passwd itself (legacy systems) still tells us the status.
        status = "unknown" if secret == SHADOW_PLACEHOLDER or shadow is None else password_status(secret)
        facts = {"password_status": status, **dict.fromkeys(AGING_FIELDS)}
    return {"name": clip(name), "uid": uid_n, "gid": gid_n, "gecos": clip(gecos or None),
            "home": clip(home or None), "shell": clip(shell or None), **facts}


def collect_users(root: Path = Path("/")) -> list[dict]:
    """Local users from /etc/passwd, with status and aging from /etc/shadow when readable."""
    shadow = shadow_facts(root)
    rows = [user_row(parts, shadow) for parts in entries(read_text(root, "/etc/passwd") or "", 7)]
    return [row for row in rows if row is not None][:MAX_ROWS]


def collect_groups(root: Path = Path("/")) -> list[dict]:
    """Local groups from /etc/group with their supplementary members."""
    rows = []
    for name, _secret, gid, members in (p[:4] for p in entries(read_text(root, "/etc/group") or "", 4)):
        gid_n = to_int(gid)
        if gid_n is None or gid_n < 0:
            continue
        member_list = [clip(m.strip()) for m in members.split(",") if m.strip()][:MAX_MEMBERS]
        rows.append({"name": clip(name), "gid": gid_n, "members": member_list})
    return rows[:MAX_ROWS]
