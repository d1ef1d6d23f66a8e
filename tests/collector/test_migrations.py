"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from collector.models import metadata


def test_migrated_schema_matches_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff


def test_the_head_revision_is_the_newest_file_and_every_file_follows_the_naming_convention():
    """``Database.upgrade`` skips Alembic when the database is at ``head_revision()``: the file-name
    convention it relies on must hold for every migration and agree with Alembic's own head."""
    from alembic.script import ScriptDirectory

    from collector.db import MIGRATIONS_DIR, alembic_config, head_revision

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_current_head() == head_revision()
    for rev in script.walk_revisions():
        assert list((MIGRATIONS_DIR / "versions").glob(f"{rev.revision}_*.py")), rev.revision


def test_every_migration_upgrades_a_database_that_holds_data(tmp_path, db_url):
    """Step by step from the first revision, with a unit, a host and an agent in place before each step:
    a migration that rebuilds a referenced table (SQLite batch mode) would fail here, as it would on a
    real installation, while an empty test database hides it."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from collector.db import Database, alembic_config

    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'stepwise.db'}"
    else:  # start the fresh PostgreSQL database from nothing
        with Database(db_url).engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    database = Database(db_url)
    revisions = [r.revision for r in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))]
    cfg = alembic_config()
    for i, revision in enumerate(revisions):
        with database.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        if i == 0:
            with database.engine.begin() as conn:
                conn.execute(text("INSERT INTO units (code, name, kind, created_at) "
                                  "VALUES ('P', 'Tỉnh', 'province', CURRENT_TIMESTAMP)"))
                conn.execute(text("INSERT INTO hosts (unit_id, hostname, macs, first_seen, inventory_hashes, "
                                  "internet_facing) "
                                  "SELECT id, 'web01', '[]', CURRENT_TIMESTAMP, '{}', false FROM units"))
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hosts")).scalar_one() == 1
    database.dispose()
