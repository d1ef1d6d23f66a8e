"""PAM password quality, lockout and hashing, from the distribution's common PAM stacks.

Debian/Ubuntu: /etc/pam.d/common-password and common-auth; RHEL family: system-auth and password-auth.
``@include`` and ``include``/``substack`` controls are followed (with a loop guard).

Keys of the result:
  available: bool (at least one stack read); files: [PAM files read]; modules: [module names seen]
  pwquality: {enabled, module ("pam_pwquality" | "pam_cracklib" | None), minlen, dcredit, ucredit,
    lcredit, ocredit, minclass, maxrepeat, difok, retry, dictcheck: int | None, enforce_for_root: bool,
    defaults_applied: [keys]} — pwquality.conf(.d) first, module arguments on top, then the defaults
  lockout: {enabled, module ("pam_faillock" | "pam_tally2" | "pam_tally" | None), deny, unlock_time,
    fail_interval, root_unlock_time: int | None, even_deny_root: bool, defaults_applied: [keys]}
  password: {hashing: str | None (sha512, yescrypt, ...), remember: int | None, nullok: bool
    (pam_unix accepts empty passwords)}
  errors: [str]
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.collectors.facts._common import Run, clip, glob_under, key_values, read_file, to_int

STACKS = ("/etc/pam.d/common-password", "/etc/pam.d/common-auth", "/etc/pam.d/system-auth",
          "/etc/pam.d/password-auth")
LINE = re.compile(r"^(-?)(auth|account|password|session)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")
PWQ_KEYS = ("minlen", "dcredit", "ucredit", "lcredit", "ocredit", "minclass", "maxrepeat", "difok", "retry",
            "dictcheck")
PWQ_DEFAULTS = {"minlen": 8, "dcredit": 0, "ucredit": 0, "lcredit": 0, "ocredit": 0, "minclass": 0,
                "maxrepeat": 0, "difok": 1, "retry": 1, "dictcheck": 1}  # pwquality.conf(5)
LOCK_KEYS = ("deny", "unlock_time", "fail_interval", "root_unlock_time")
LOCK_DEFAULTS = {"deny": 3, "unlock_time": 600, "fail_interval": 900}  # faillock.conf(5)
HASHES = ("yescrypt", "sha512", "sha256", "blowfish", "gost_yescrypt", "bigcrypt", "md5")
MAX_DEPTH = 8


def collect_pam(root: Path = Path("/"), run: Run | None = None) -> dict:
    """PAM password quality and lockout (see the module docstring for the keys)."""
    lines: list[tuple[str, str, str, list[str]]] = []
    files: list[str] = []
    errors: list[str] = []
    for stack in STACKS:
        _read_stack(root, stack, lines, files, errors, [])
    if not files:
        return {"available": False, "error": "no PAM stack found (common-password/system-auth)",
                "files": [], "modules": [], "errors": errors[:50]}
    return {"available": True, "files": files, "modules": sorted({m for _t, _c, m, _a in lines})[:200],
            "pwquality": _pwquality(root, lines), "lockout": _lockout(root, lines),
            "password": _password(lines), "errors": errors[:50]}


def _read_stack(root: Path, path: str, lines: list, files: list[str], errors: list[str], stack: list[str]) -> None:
    if path in files or path in stack or len(stack) > MAX_DEPTH:
        return
    text, problem = read_file(root, path)
    if text is None:
        if problem != "missing":
            errors.append(clip(f"{path}: {problem}"))
        return
    files.append(path)
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("@include"):
            name = line.split(None, 1)[1].strip() if " " in line else ""
            if name:
                _read_stack(root, _pam_path(name), lines, files, errors, [*stack, path])
            continue
        found = LINE.match(line)
        if not found:
            continue
        _opt, type_, control, module, args = found.groups()
        module = module.rsplit("/", 1)[-1].removesuffix(".so")
        if control in ("include", "substack"):
            _read_stack(root, _pam_path(module), lines, files, errors, [*stack, path])
            continue
        lines.append((type_, control, module, args.split()))


def _pam_path(name: str) -> str:
    return name if name.startswith("/") else f"/etc/pam.d/{name}"


def _args(args: list[str]) -> dict[str, str]:
    return {a.split("=", 1)[0]: (a.split("=", 1)[1] if "=" in a else "") for a in args}


def _conf(root: Path, main: str, drop_in: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for path in [main, *glob_under(root, drop_in)]:
        text, _problem = read_file(root, path)
        if text is not None:
            settings.update(key_values(text, sep="=", lower=True))
    return settings


def _pwquality(root: Path, lines: list) -> dict:
    module = next((m for t, _c, m, _a in lines if t == "password" and m in ("pam_pwquality", "pam_cracklib")), None)
    settings = _conf(root, "/etc/security/pwquality.conf", "/etc/security/pwquality.conf.d/*.conf") \
        if module != "pam_cracklib" else {}
    for t, _c, m, args in lines:
        if t == "password" and m == module:
            settings.update(_args(args))
    out = _numbers(module, settings, PWQ_KEYS, PWQ_DEFAULTS if module == "pam_pwquality" else {})
    out["enforce_for_root"] = "enforce_for_root" in settings
    return out


def _lockout(root: Path, lines: list) -> dict:
    modules = [m for t, _c, m, _a in lines if t in ("auth", "account")]
    module = next((m for m in ("pam_faillock", "pam_tally2", "pam_tally") if m in modules), None)
    settings = _conf(root, "/etc/security/faillock.conf", "/etc/security/faillock.conf.d/*.conf") \
        if module == "pam_faillock" else {}
    for t, _c, m, args in lines:
        if t == "auth" and m == module:
            settings.update(_args(args))
    out = _numbers(module, settings, LOCK_KEYS, LOCK_DEFAULTS if module == "pam_faillock" else {})
    out["even_deny_root"] = "even_deny_root" in settings
    return out


def _numbers(module: str | None, settings: dict, keys: tuple, defaults: dict) -> dict:
    """The numeric settings of a module; unset ones take the module's documented default (listed)."""
    out: dict = {"enabled": module is not None, "module": module}
    applied = []
    for key in keys:
        out[key] = to_int(settings.get(key))
        if out[key] is None and key in defaults:
            out[key] = defaults[key]
            applied.append(key)
    out["defaults_applied"] = applied
    return out


def _password(lines: list) -> dict:
    hashing, remember, nullok = None, None, False
    for t, _c, m, args in lines:
        parsed = _args(args)
        if m == "pam_unix":
            if t == "password":
                hashing = hashing or next((h for h in HASHES if h in parsed), None)
                remember = remember if remember is not None else to_int(parsed.get("remember"))
            if "nullok" in parsed or "nullok_secure" in parsed:
                nullok = True
        elif m == "pam_pwhistory" and t == "password":
            remember = to_int(parsed.get("remember")) if "remember" in parsed else (remember or 10)
    return {"hashing": hashing, "remember": remember, "nullok": nullok}
