"""Which paths FIM watches: roots, detected web roots, include/exclude globs and per-path options."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import translate

DEFAULT_PATHS = ("/etc", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin")
WEB_ROOT_PATTERNS = ("/var/www", "/srv/www", "/usr/share/nginx/html", "/var/lib/tomcat*/webapps")
# Editor swap files and lock files churn constantly and carry no integrity signal.
DEFAULT_EXCLUDES = ("*.swp", "*.swx", "*~", "*/.#*", "/etc/.pwd.lock", "/etc/mtab")


def detect_web_roots(patterns: Iterable[str] = WEB_ROOT_PATTERNS) -> list[str]:
    """Existing web roots among the common locations (a few glob calls, no walking)."""
    found: list[str] = []
    for pattern in patterns:
        found.extend(sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])
    return [p for p in found if os.path.lexists(p)]


def norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass
class PathPolicy:
    """Resolved configuration: what is watched, what is skipped, and how each path is treated."""

    roots: list[str]
    web_roots: list[str] = field(default_factory=list)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    @classmethod
    def build(cls, paths: Iterable[str] | None, web_roots: Iterable[str] | None, include: Iterable[str],
              exclude: Iterable[str], options: Mapping[str, Mapping[str, object]] | None) -> PathPolicy:
        """Defaults plus detected web roots unless given; every path normalised."""
        webs = [norm(p) for p in (detect_web_roots() if web_roots is None else web_roots)]
        roots = [norm(p) for p in (DEFAULT_PATHS if paths is None else paths)]
        roots += [w for w in webs if w not in roots]
        opts = {norm(k): dict(v) for k, v in (options or {}).items()}
        return cls(roots=list(dict.fromkeys(roots)), web_roots=webs, include=tuple(include),
                   exclude=tuple(exclude), options=opts)

    def __post_init__(self) -> None:
        # One compiled regex per glob list: checked for every file of every scan.
        self._exclude = _compile(self.exclude)
        self._include = _compile(self.include)

    def excluded(self, path: str) -> bool:
        """A glob matches the full path or the file name."""
        return _matches(self._exclude, path)

    def included(self, path: str, is_dir: bool) -> bool:
        """Directories are always walked; files must match an include glob when any is given."""
        return is_dir or not self.include or _matches(self._include, path)

    def root_of(self, path: str) -> str | None:
        matches = [r for r in self.roots if under(path, r)]
        return max(matches, key=len) if matches else None

    def option(self, path: str, key: str, default: object = True) -> object:
        """Per-path option from the longest configured prefix (e.g. ``{"/var/log": {"hash": False}}``)."""
        matches = [p for p in self.options if under(path, p) and key in self.options[p]]
        return self.options[max(matches, key=len)][key] if matches else default

    def is_web(self, path: str) -> bool:
        return any(under(path, w) for w in self.web_roots)


def _compile(globs: Iterable[str]) -> re.Pattern[str] | None:
    globs = list(globs)
    return re.compile("|".join(f"(?:{translate(g)})" for g in globs)) if globs else None


def _matches(pattern: re.Pattern[str] | None, path: str) -> bool:
    return pattern is not None and bool(pattern.match(path) or pattern.match(os.path.basename(path)))
