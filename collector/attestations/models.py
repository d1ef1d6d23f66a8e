"""Attested items (M1–M3), a unit's attestation for one item and year, its evidence files and review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from collector.types import UTCDateTime, utcnow

MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    indicator: str
    vi: str
    en: str


# The ids are the component names of the M1–M3 indicators in rules/data/scoring/model.yaml, and of A6
# (backup and recovery), which has no agent data yet and is attested until it does.
ITEMS: tuple[Item, ...] = (
    Item("level_approved", "M1", "Hồ sơ đề xuất cấp độ đã được phê duyệt", "Security level approved"),
    Item("plan_implemented", "M1", "Triển khai đầy đủ phương án bảo đảm an toàn theo cấp độ",
         "Protection plan implemented"),
    Item("rules_and_officer", "M1", "Ban hành quy chế bảo đảm an toàn thông tin và phân công cán bộ phụ trách",
         "Security rules issued and officer designated"),
    Item("independent_assessment", "M2", "Kiểm tra, đánh giá an toàn thông tin độc lập định kỳ",
         "Independent assessment in the period"),
    Item("training", "M2", "Đào tạo, bồi dưỡng, tuyên truyền về an toàn thông tin", "Security training"),
    Item("drill", "M2", "Diễn tập ứng cứu sự cố an toàn thông tin", "Incident response drill"),
    Item("soc_coverage", "M3", "Giám sát, bảo vệ chuyên nghiệp (SOC)", "Professional monitoring (SOC) coverage"),
    Item("national_connection", "M3", "Kết nối, chia sẻ thông tin với hệ thống giám sát quốc gia",
         "Connected to the national monitoring system"),
    Item("recent_backup", "A6", "Sao lưu dữ liệu, hệ thống trong vòng 24 giờ", "Backup within 24 hours"),
    Item("offline_copy", "A6", "Có bản sao lưu ngoại tuyến hoặc không thể sửa đổi", "Offline or immutable copy"),
    Item("restore_test", "A6", "Kiểm thử khôi phục từ bản sao lưu trong kỳ", "Restore tested in the period"),
)
ITEM_IDS = tuple(i.id for i in ITEMS)
ITEMS_BY_ID = {i.id: i for i in ITEMS}

# Đạt / Đạt một phần / Chưa đạt.
RATINGS: dict[str, float] = {"dat": 1.0, "dat_mot_phan": 0.5, "chua_dat": 0.0}
STATUSES = ("submitted", "rated", "withdrawn")


class AttestationBase(SQLModel):
    item: str = Field(max_length=32)
    period: int  # calendar year; a rating says nothing about any other year
    note: str | None = Field(default=None, max_length=MAX_TEXT)


class AttestationCreate(AttestationBase):
    unit: str = Field(min_length=1, max_length=64)  # unit code


class Attestation(AttestationBase, table=True):
    __tablename__ = "attestations"
    __table_args__ = (Index("ix_attestations_unit_period_item", "unit_id", "period", "item"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id")
    status: str = Field(default="submitted", max_length=16)  # submitted | rated | withdrawn
    submitted_by: str = Field(max_length=128)
    submitted_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    rating: str | None = Field(default=None, max_length=16)  # dat | dat_mot_phan | chua_dat
    rating_value: float | None = None  # 1 / 0.5 / 0, stored so scoring never re-derives it
    review_comment: str | None = Field(default=None, max_length=MAX_TEXT)
    reviewed_by: str | None = Field(default=None, max_length=128)
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    withdrawn_by: str | None = Field(default=None, max_length=128)
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class EvidenceFile(SQLModel, table=True):
    """One uploaded file; its bytes live content-addressed under ``<data dir>/evidence/``."""

    __tablename__ = "evidence_files"

    id: int | None = Field(default=None, primary_key=True)
    attestation_id: int = Field(foreign_key="attestations.id", index=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    filename: str = Field(max_length=255)  # sanitised display name, never a path
    content_type: str = Field(max_length=128)  # detected from the bytes, not the client's claim
    size: int
    sha256: str = Field(max_length=64, index=True)
    stored_path: str = Field(max_length=255)  # relative to the data dir: evidence/<sha[:2]>/<sha>
    uploaded_by: str = Field(max_length=128)
    uploaded_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class EvidenceFilePublic(SQLModel):
    id: int
    attestation_id: int
    unit_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class AttestationPublic(AttestationBase):
    id: int
    unit_id: int
    unit: str | None = None
    indicator: str | None = None
    status: str
    submitted_by: str
    submitted_at: datetime
    rating: str | None
    rating_value: float | None
    review_comment: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    withdrawn_by: str | None
    withdrawn_at: datetime | None


class AttestationDetail(AttestationPublic):
    files: list[EvidenceFilePublic] = []


class ReviewIn(SQLModel):
    rating: str
    comment: str | None = Field(default=None, max_length=MAX_TEXT)
