"""Every table, imported in one place so metadata is complete for Alembic and create_all."""

from sqlmodel import SQLModel

from collector.agents.models import Agent, EnrollmentToken
from collector.alerts.models import Alert, PipelineCursor
from collector.compliance.models import CheckResultRow
from collector.events.models import Event
from collector.exceptions.models import RiskException
from collector.hosts.models import Host, InventoryRow
from collector.ingest.models import IngestBatch
from collector.units.models import Unit
from collector.users.models import ApiToken, ConsoleSession, User

metadata = SQLModel.metadata

__all__ = [
    "Agent", "Alert", "ApiToken", "CheckResultRow", "ConsoleSession", "EnrollmentToken", "Event", "Host", "IngestBatch",
    "InventoryRow", "PipelineCursor", "RiskException", "Unit", "User", "metadata",
]
