"""The public ranking page (no login): the years an administrator published, and each year's grades,
ranks and indicator scores per peer group — never hosts, addresses or vulnerabilities."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from collector.deps import SessionDep
from collector.scoring import ranking, review
from collector.types import utcnow
from console.templating import render
from rules.scoring.model import INDICATORS

router = APIRouter(include_in_schema=False)


@router.get("/public/ranking")
def published_years(request: Request, session: SessionDep) -> Response:
    return render(request, "public_ranking.html", {"viewer": None, "years": review.published_years(session),
                                                   "report": None})


@router.get("/public/ranking/{year}")
def published_ranking(year: int, request: Request, session: SessionDep) -> Response:
    years = review.published_years(session)
    if year not in years:  # unpublished years look exactly like years that do not exist
        return render(request, "error.html", {"viewer": None, "status": 404}, status_code=404)
    report = ranking.annual_cached(session, year=year, now=utcnow())
    groups: dict[str, list[dict]] = {}
    for rec in ranking.records(report):
        groups.setdefault(rec["group"], []).append(rec)
    return render(request, "public_ranking.html", {
        "viewer": None, "years": years, "report": report, "groups": groups, "indicators": INDICATORS,
        "rollups": ranking.rollup_records(report),
        "labels": {i: report.model.indicators[i].label for i in INDICATORS}})
