"""Helpers every ``khien`` command module shares: the usage error, database options and opening."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from collector.settings import Settings, load_settings
from khien.durations import parse_duration

if TYPE_CHECKING:
    from collector.db import Database


class UsageError(Exception):
    """A mistake in how the command was called."""


def db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default $KHIEN_DATA_DIR or ./khien-data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
                        "(default $KHIEN_DATABASE_URL or SQLite in the data dir)")


def settings_of(args: argparse.Namespace, **extra) -> Settings:
    return load_settings(data_dir=args.data_dir, database_url=args.database_url, **extra)


def database(args: argparse.Namespace) -> Database:
    """The database, schema upgraded: every command sees the same, current schema."""
    # Imported here: SQLAlchemy and Alembic cost ~0.7 s of start-up that `khien check` does not need.
    from collector.db import Database

    db = Database(settings_of(args).database_url)
    db.upgrade()
    return db


def acting_user(session, username: str):
    """The active user named by ``--by``: commands act with their rights and record their name; what
    the command changes in this session is audited as theirs (via "cli")."""
    from collector.access import Actor
    from collector.audit import tracking
    from collector.users import service as users

    user = users.get_by_username(session, username=username)
    if user is None or not user.is_active:
        raise UsageError(f"unknown user: {username!r}")
    tracking.attach(session, Actor(username=user.username, role=user.role, user_id=user.id,
                                   scope=users.scope_for(session, user=user), via="cli"))
    return user


def duration(text: str):
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors) and errors():
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)
