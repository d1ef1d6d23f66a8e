"""The per-unit annual report as PDF, with the same contents and translations as the HTML page.

fpdf2 lays the document out in pure Python; Vietnamese needs a Unicode TrueType font, and DejaVu Sans
(Debian package ``fonts-dejavu-core``, on every Debian and Ubuntu server) has every diacritic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fpdf import FPDF

from console import i18n

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT, FONT_BOLD = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"


class FontMissing(RuntimeError):
    """The Unicode font is not installed (apt-get install fonts-dejavu-core)."""


def render_pdf(data: dict[str, Any], *, lang: str) -> bytes:
    if not FONT.is_file() or not FONT_BOLD.is_file():
        raise FontMissing(f"{FONT} not found: install the Debian package fonts-dejavu-core")
    _ = i18n.translations(lang).gettext
    unit, model, year = data["unit"], data["model"], data["year"]
    pdf = FPDF(format="A4")
    pdf.set_title(f"{_('Annual information-security report')} {year} — {unit.name}")
    pdf.add_font("DejaVu", "", str(FONT))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    _line(pdf, 8, f"{_('Annual information-security report')} {year}")
    pdf.set_font("DejaVu", "", 10)
    if unit.synthetic:
        _line(pdf, 6, _("Synthetic demo data: these are not any real agency's figures."))
    _line(pdf, 6, f"{_('Unit')}: {unit.name} ({unit.code})")
    _line(pdf, 6, f"{_('Scoring model')}: {model.name[lang]} — {model.version}")
    _line(pdf, 6, f"{_('Generated')}: {i18n.to_vietnam_time(data['generated_at']):%Y-%m-%d %H:%M}")

    systems = data["systems"]
    _heading(pdf, _("1. Information systems and security levels"))
    _line(pdf, 6, f"{_('Servers monitored by Khiên')}: {systems['total']}; {_('internet-facing')}: "
                         f"{systems['internet_facing']}; {_('level not declared')}: {systems['undeclared']}")
    _table(pdf, [[f"{_('Level')} {lvl}" for lvl, _n in systems["by_level"]],
                 [str(n) for _lvl, n in systems["by_level"]]])

    _heading(pdf, _("2. Plan implementation and attested measures"))
    rows = [[_("Indicator"), _("Item"), _("Rating"), _("Reviewer's comment")]]
    rows += [[a["indicator"], a["item"], a["label"][lang] if a["label"] else _("not rated"), a["comment"] or ""]
             for a in data["attested"]]
    _table(pdf, rows, widths=(14, 50, 36, 90))
    pdf.set_font("DejaVu", "B", 10)
    _line(pdf, 6, _("Incidents"))
    pdf.set_font("DejaVu", "", 10)
    if not data["incidents"]:
        _line(pdf, 6, _("No incident was recorded this year."))
    else:
        rows = [[_("Incident"), _("Detected"), _("Initial notice"), _("Full report"), _("Reported on time")]]
        for item in data["incidents"]:
            i = item["incident"]
            when = [f"{i18n.to_vietnam_time(t):%Y-%m-%d %H:%M}" if t else "—"
                    for t in (i.detected_at, i.initial_report_at, i.full_report_at)]
            verdict = "—" if item["on_time"] is None else _("yes") if item["on_time"] else _("no")
            title = i.title + (f" ({_('serious')})" if i.severity == "serious" else "")
            rows.append([title, *when, verdict])
        _table(pdf, rows, widths=(62, 32, 32, 32, 32))

    _heading(pdf, _("3. Assurance score"))
    score = data["score"]
    if score is None:
        _line(pdf, 6, _("No month of this year has been frozen yet."))
    else:
        r = score["result"]
        if r.score is not None:
            grade = next(b.label[lang] for b in model.bands if b.grade == r.grade)
            line = f"{_('Score')} {r.score:.2f} — {_('Grade')} {grade}"
        else:
            line = model.not_enough_data_label[lang]
        line += f"; {_('Rank')} {score['rank'] or '—'} / {score['of']} ({score['group'][lang]}); "
        line += f"{_('valid months')}: {r.valid_months}"
        if score["provisional"]:
            line += f" — {_('Provisional: the year is not complete')}"
        _line(pdf, 6, line)
        rows = [[_("Indicator"), _("Weight"), _("Yearly value"), _("Points")]]
        for ident, value in r.indicators.items():
            rows.append([f"{ident} {model.indicators[ident].label[lang]}", f"{model.indicators[ident].weight:g}",
                         "—" if value is None else f"{value:.1f}",
                         f"{r.points.get(ident, 0):.2f}" if r.points else "—"])
        _table(pdf, rows, widths=(100, 25, 35, 30))

    overdue = data["overdue"]
    _heading(pdf, _("4. Open findings past their deadline"))
    if not overdue["total"]:
        _line(pdf, 6, _("None."))
    else:
        _line(pdf, 6, "; ".join(f"{cls}: {n}" for cls, n in overdue["counts"].items()))
        rows = [[_("Finding"), _("Class"), _("Host"), _("Due"), _("Days overdue")]]
        rows += [[f"{f['rule']} {f['location']}", f["class"], f["hostname"] or "—",
                  f"{i18n.to_vietnam_time(f['due_at']):%Y-%m-%d}", str(f["days"])] for f in overdue["listed"]]
        _table(pdf, rows, widths=(70, 25, 45, 25, 25))

    _heading(pdf, _("5. Plan goals"))
    rows = [[_("Goal"), _("Target"), _("Current"), _("Status")]]
    for g in data["goals"]:
        status = (_("met") if g["met"] else _("no data") if g["met"] is None
                  else _("on track") if g["on_track"] else _("not met"))
        rows.append([g["title"][lang], f"{g['comparison']} {g['target']:g}",
                     "—" if g["current"] is None else f"{g['current']:.1f}", status])
    _table(pdf, rows, widths=(100, 30, 30, 30))
    return bytes(pdf.output())


def _line(pdf: FPDF, height: int, text: str) -> None:
    """A paragraph at the left margin (fpdf2 otherwise leaves the cursor at the right of the last one)."""
    pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 12)
    _line(pdf, 7, text)
    pdf.set_font("DejaVu", "", 9)


def _table(pdf: FPDF, rows: list[list[str]], widths: tuple[int, ...] | None = None) -> None:
    with pdf.table(col_widths=widths, first_row_as_headings=True, line_height=5) as table:
        for row in rows:
            cells = table.row()
            for value in row:
                cells.cell(str(value))
    pdf.set_font("DejaVu", "", 10)
