"""The per-unit annual report page: printable (the browser's print to PDF keeps the layout)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from collector.deps import SessionDep
from collector.errors import NotFound
from collector.scoring import report
from collector.types import utcnow
from console.deps import ViewerDep
from console.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/reports/{unit}/{year}")
def unit_report(unit: str, year: int, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    try:
        data = report.annual_report(session, scope=viewer.scope, unit_code=unit, year=year, now=utcnow())
    except NotFound:
        return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)
    return render(request, "unit_report.html", {"viewer": viewer, **data})
