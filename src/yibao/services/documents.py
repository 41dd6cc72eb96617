"""Printable documents (vouchers, certificates, statements, receipts) as PDF.

Chinese text uses the Adobe CID font STSong-Light that every PDF reader
carries, so no font file ships with yibao.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from functools import lru_cache

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "STSong-Light"


@lru_cache(maxsize=1)
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _style(size: float, leading: float | None = None, bold: bool = False) -> ParagraphStyle:
    return ParagraphStyle(
        name=f"s{size}{bold}", fontName=_font(), fontSize=size, leading=leading or size * 1.4
    )


def _esc(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Document:
    """A simple flowing document: a title, labelled lines, tables, paragraphs."""

    def __init__(self, title_zh: str, title_en: str, *, subtitle: str = "") -> None:
        self.title = f"{title_zh} {title_en}"
        self._flow: list[Flowable] = [
            Paragraph(_esc(title_zh), _style(18)),
            Paragraph(_esc(title_en), _style(11)),
        ]
        if subtitle:
            self._flow.append(Paragraph(_esc(subtitle), _style(9)))
        self._flow.append(Spacer(1, 4 * mm))

    def heading(self, text: str) -> Document:
        self._flow += [Spacer(1, 3 * mm), Paragraph(_esc(text), _style(12)), Spacer(1, 1.5 * mm)]
        return self

    def fields(self, pairs: Sequence[tuple[str, object]]) -> Document:
        rows = [[Paragraph(_esc(k), _style(9)), Paragraph(_esc(v), _style(10))] for k, v in pairs]
        table = Table(rows, colWidths=[55 * mm, 115 * mm])
        table.setStyle(
            TableStyle(
                [("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
            )
        )
        self._flow.append(table)
        return self

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[object]],
        widths: Sequence[float] | None = None,
    ) -> Document:
        data = [[Paragraph(_esc(h), _style(8)) for h in headers]]
        data += [[Paragraph(_esc(c), _style(8)) for c in row] for row in rows]
        if len(data) == 1:
            data.append([Paragraph("（无 none）", _style(8))] + [""] * (len(headers) - 1))
        table = Table(data, colWidths=[w * mm for w in widths] if widths else None, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.93, 0.97)),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        self._flow.append(table)
        return self

    def paragraph(self, text: str, size: float = 9) -> Document:
        self._flow.append(Paragraph(_esc(text), _style(size)))
        return self

    def render(self, *, generated_at: dt.datetime | None = None) -> bytes:
        buf = io.BytesIO()
        doc = SimpleDocTemplate(
            buf,
            pagesize=A4,
            title=self.title,
            author="yibao",
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=16 * mm,
        )
        flow = list(self._flow)
        if generated_at is not None:
            flow += [
                Spacer(1, 6 * mm),
                Paragraph(
                    _esc(f"生成时间 generated {generated_at:%Y-%m-%d %H:%M:%S %Z}"), _style(7)
                ),
            ]
        doc.build(flow)
        return buf.getvalue()


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"
