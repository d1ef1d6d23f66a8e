"""Console: Unit and province dashboards, attestations, appeals."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
