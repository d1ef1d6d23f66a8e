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
