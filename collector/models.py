"""Every table, imported in one place so metadata is complete for Alembic and create_all."""

from sqlmodel import SQLModel

from collector.agents.models import Agent, EnrollmentToken
from collector.alerts.models import Alert, PipelineCursor
from collector.attestations.models import Attestation, EvidenceFile
from collector.audit.models import AuditEntry
from collector.compliance.models import CheckResultRow
from collector.events.models import Event
from collector.exceptions.models import RiskException
from collector.findings.models import Finding, FindingEvent, FindingSighting
from collector.hosts.models import Host, InventoryRow
from collector.incidents.models import Incident
from collector.ingest.models import IngestBatch
from collector.scans.models import ScanAsset, ScanHost, ScanPolicy, ScanPort, ScanRun, UnitRange
from collector.scoring.models import (
    HostActivity,
    PublishedRanking,
    ScoreAdjustment,
    ScoreAppeal,
    ScoreSnapshot,
    ScoreValue,
)
from collector.units.models import Unit
from collector.users.models import ApiToken, ConsoleSession, User
from collector.vulns.models import Feed, KnownExploitedRow, OfficialWarningRow, VulnAffected, VulnRecord

metadata = SQLModel.metadata

__all__ = [
    "Agent", "Alert", "ApiToken", "Attestation", "AuditEntry", "CheckResultRow", "ConsoleSession", "EnrollmentToken",
    "Event",
    "EvidenceFile", "Feed", "Finding", "FindingEvent", "FindingSighting", "Host", "HostActivity", "Incident",
    "IngestBatch", "InventoryRow", "KnownExploitedRow", "OfficialWarningRow", "PipelineCursor", "PublishedRanking",
    "RiskException", "ScanAsset", "ScanHost", "ScanPolicy", "ScanPort", "ScanRun", "ScoreAdjustment", "ScoreAppeal",
    "ScoreSnapshot", "ScoreValue", "Unit", "UnitRange", "User", "VulnAffected", "VulnRecord", "metadata",
]
