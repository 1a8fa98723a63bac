"""Fonts that pip packages ship, found in their install folders (no system fonts).

Two CJK fonts (Noto Sans CJK SC, WenQuanYi Micro Hei: both have Latin glyphs too) and two
Latin families (Open Sans, Source Serif Pro), so rendered text varies in face as it does on
real documents. Each package is optional; :func:`missing` names the pip lines that bring the
absent ones, for a test's skip reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from compiler.shipped_models import package_folder


@dataclass(frozen=True)
class FontFile:
    """One face: ``path`` inside ``package``'s folder, ``index`` within a .ttc collection."""

    name: str
    package: str  # import name
    pip: str  # the distribution to install
    path: str
    index: int
    cjk: bool  # has the Chinese glyphs (all of these have Latin ones)


FONTS = [
    FontFile("Noto Sans CJK SC", "noto_cjk_sans_otc", "noto-cjk-sans-otc",
             "NotoSansCJK-Regular.ttc", 2, True),
    FontFile("WenQuanYi Micro Hei", "paperang_p2_fonts_cjk", "paperang-p2-fonts-cjk",
             "fonts/wqy-microhei.ttc", 0, True),
    FontFile("Open Sans", "ttf_opensans", "ttf-opensans", "ttf/OpenSans-Regular.ttf", 0, False),
    FontFile("Open Sans SemiBold", "ttf_opensans", "ttf-opensans",
             "ttf/OpenSans-SemiBold.ttf", 0, False),
    FontFile("Source Serif Pro", "font_source_serif_pro", "font-source-serif-pro",
             "files/SourceSerifPro-Regular.ttf", 0, False),
]
PIP_LINE = "pip install " + " ".join(sorted({f.pip for f in FONTS}))


def font_path(f: FontFile) -> Path | None:
    folder = package_folder(f.package)
    if folder is None or not (folder / f.path).is_file():
        return None
    return folder / f.path


def available(cjk: bool | None = None) -> list[FontFile]:
    """The installed faces; ``cjk=True`` only those with Chinese glyphs, False only Latin."""
    return [f for f in FONTS if font_path(f) is not None and (cjk is None or f.cjk == cjk)]


def missing() -> list[str]:
    """pip names of the font packages not installed."""
    return sorted({f.pip for f in FONTS if font_path(f) is None})


@functools.lru_cache(maxsize=64)
def load(f: FontFile, size: int):  # -> PIL.ImageFont.FreeTypeFont
    from PIL import ImageFont

    path = font_path(f)
    if path is None:
        raise FileNotFoundError(f"{f.name}: pip install {f.pip}")
    return ImageFont.truetype(str(path), size, index=f.index)


@functools.lru_cache(maxsize=8)
def covers(f: FontFile, chars: str) -> str:
    """The characters of ``chars`` that ``f`` has a glyph for (not its .notdef box)."""
    font = load(f, 24)
    tofu = bytes(font.getmask("\U0010fffd"))
    out = []
    for ch in chars:
        mask = font.getmask(ch)
        if mask.getbbox() is not None and bytes(mask) != tofu:
            out.append(ch)
    return "".join(out)
