"""The 优秀导师 certificate (SPEC §3a 捆绑考核: a mentor whose counted mentees were all 优秀 or commended
is preferred for 优秀 and given the certificate): one PDF per mentor and year, written under
``[programme] certificate_dir`` and told to the mentor privately through the outbox.

Chat platforms here carry text only through the outbox, so the message says honestly where the file
is (the department prints or forwards it); nothing pretends to attach it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.router import Answer
from storage.models import MentorCertificate, Person

from handlers.mentoring.queries import bundled_assessment


class CertificateSetupError(ValueError):
    """The county name or the font is missing from the configuration."""


@dataclass
class Issued:
    mentor: Person
    path: Path
    new: bool  # first issued now (the message was queued)


def render_certificate(path: Path, lines: list[str], font: str) -> None:
    """A4 landscape: a red double border, the title, the salutation and text, the issuer and date at
    the bottom right. ``lines`` come from templates/mentor/certificate_text.md."""
    from fpdf import FPDF

    title, salutation, *body, issuer, date = lines
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.add_font("cjk", "", font, collection_font_number=2 if font.endswith(".ttc") else 0)  # 2: Simplified Chinese
    pdf.set_draw_color(178, 34, 34)
    pdf.set_line_width(2.0)
    pdf.rect(10, 10, 277, 190)
    pdf.set_line_width(0.6)
    pdf.rect(15, 15, 267, 180)
    pdf.set_text_color(178, 34, 34)
    pdf.set_font("cjk", size=44)
    pdf.set_xy(15, 35)
    pdf.cell(267, 22, title, align="C")
    pdf.set_text_color(20, 20, 20)
    pdf.set_font("cjk", size=20)
    pdf.set_xy(40, 75)
    pdf.cell(0, 12, salutation)
    pdf.set_xy(40, 92)
    pdf.multi_cell(217, 12, "\n".join("　　" + line for line in body), wrapmode="CHAR")  # Chinese has no spaces
    pdf.set_font("cjk", size=18)
    pdf.set_xy(150, 160)
    pdf.cell(107, 10, issuer, align="R")
    pdf.set_xy(150, 172)
    pdf.cell(107, 10, date, align="R")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


async def issue_certificates(session: AsyncSession, year: int, *, config, clock, renderer, notify,
                             reissue: bool = False) -> list[Issued]:
    """Certificates for every mentor the 捆绑考核 of ``year`` prefers for 优秀: the PDF (again only with
    ``reissue``), its record, and one private message per mentor and year (idempotency key)."""
    programme = config.programme
    if programme.county.strip() in ("", "本县"):  # the shipped placeholder would print “中共本县委组织部”
        raise CertificateSetupError("请先在配置 [programme] county 写上县名（如 常山县）")
    if not Path(programme.certificate_font).is_file():
        raise CertificateSetupError(f"找不到证书字体 {programme.certificate_font}（Debian：apt install fonts-noto-cjk）")
    verdicts = [v for v in await bundled_assessment(session, year, programme.bundle_min_months) if v.preferred]
    folder = Path(programme.certificate_dir) / str(year)
    issued_on = clock.today()
    render = renderer
    existing = {c.person_id: c for c in (await session.exec(
        select(MentorCertificate).where(MentorCertificate.year == year))).all()}
    # Draw every PDF before writing anything: the drawing is slow (about 0.5 s of CPU each) and a
    # transaction that has written would hold SQLite's write turn meanwhile.
    todo = []
    for v in verdicts:
        mentor = v.mentor
        path = (folder / f"优秀导师-{year}-{mentor.name}-{mentor.id}.pdf").resolve()
        if mentor.id not in existing or reissue or not path.is_file():
            lines = render.text("mentor/certificate_text", name=mentor.name, year=year,
                                county=programme.county.strip(), issued=issued_on).splitlines()
            await asyncio.to_thread(render_certificate, path, [line for line in lines if line.strip()],
                                    programme.certificate_font)
        todo.append((mentor, path))
    out = []
    for mentor, path in todo:
        row = existing.get(mentor.id)  # type: ignore[arg-type]
        new = row is None
        if row is None:
            row = MentorCertificate(person_id=mentor.id, year=year, path=str(path),  # type: ignore[arg-type]
                                    created_at=clock.now())
        row.path = str(path)
        session.add(row)
        await notify(session, f"certificate:{mentor.id}:{year}", mentor.id,
                     Answer.of("mentor/certificate_notice", name=mentor.name, year=year, path=str(path)),
                     source="certificate")
        out.append(Issued(mentor, path, new))
    return out
