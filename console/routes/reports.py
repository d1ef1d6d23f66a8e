"""The per-unit annual report: a printable page, and the same contents as a PDF file."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from collector.deps import SessionDep
from collector.errors import NotFound
from collector.scoring import report
from collector.types import utcnow
from console import i18n
from console.deps import ViewerDep
from console.report_pdf import render_pdf
from console.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/reports/{unit}/{year}.pdf")
def unit_report_pdf(unit: str, year: int, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """The same report as a PDF file (declared before the page: its path would match the page's too)."""
    try:
        data = report.annual_report(session, scope=viewer.scope, unit_code=unit, year=year, now=utcnow())
    except NotFound:
        return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)
    content = render_pdf(data, lang=i18n.language_of(request))
    filename = f"bao-cao-attt-{data['unit'].code}-{year}.pdf"
    return Response(content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@router.get("/reports/{unit}/{year}")
def unit_report(unit: str, year: int, request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    try:
        data = report.annual_report(session, scope=viewer.scope, unit_code=unit, year=year, now=utcnow())
    except NotFound:
        return render(request, "error.html", {"viewer": viewer, "status": 404}, status_code=404)
    return render(request, "unit_report.html", {"viewer": viewer, **data})
