"""Text lines and small document pages rendered with shipped fonts; the truth is the string.

Lines are Chinese (everyday words, now and then a character drawn from the recogniser's
whole dictionary), English, or both with numbers, as on receipts, forms and signs. Each is
drawn in a random face and size with a light, unevenly lit background, dark ink, a small
rotation, blur and sensor noise. Every character is one the recogniser's dictionary holds
and the chosen font has a glyph for, so a perfect reader could read it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from compiler.corpus import fonts

ZH_WORDS = ("发票 金额 日期 合计 数量 单价 名称 规格 地址 电话 公司 有限 编号 服务 时间 备注 "
            "北京 上海 广州 深圳 人民币 银行 账户 客户 订单 商品 价格 优惠 会员 门店 欢迎 光临 "
            "谢谢 出口 入口 停车场 营业 时间 中国 科技 大学 学院 图书馆 医院 药房 超市 餐厅 "
            "早餐 午餐 晚餐 咖啡 牛奶 面包 水果 蔬菜 苹果 香蕉 东方 西路 南京 路口 地铁 站台 "
            "开放 关闭 注意 安全 禁止 吸烟 小心 地滑 请勿 打扰 天气 晴朗 多云 温度 今天 明天 "
            "计算 模型 数据 网络 芯片 系统 设计 测试 文件 报告 第一 第二 章节 内容 目录").split()
EN_WORDS = ("total amount date price invoice number order customer service open close "
            "street road station exit entrance parking welcome thank you coffee milk bread "
            "hotel office bank account model data network system report chapter page table "
            "figure result test design quality power energy water north south east west "
            "Monday Friday January April Beijing Shanghai Road Avenue Tel No. Ltd Co. "
            "INT8 ONNX kernel tensor compiler cache layout").split()


@dataclass(frozen=True)
class Line:
    """A rendered line: the text and its box (x0, y0, x1, y1) in the image."""

    text: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Page:
    """An RGB uint8 image [h, w, 3] and the lines drawn on it, top to bottom."""

    image: np.ndarray
    lines: list[Line]


def _number(rng: np.random.Generator) -> str:
    kind = rng.integers(0, 4)
    if kind == 0:
        return f"{rng.integers(2000, 2031)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
    if kind == 1:
        return f"{rng.integers(1, 999)}.{rng.integers(0, 100):02d}"
    if kind == 2:
        return f"{rng.integers(10, 99)}:{rng.integers(0, 60):02d}"
    return str(rng.integers(1, 100000))


def sample_text(rng: np.random.Generator, kind: str, dictionary: str, cjk_font: bool,
                words: int = 3) -> str:
    """A line of ``kind`` "zh", "en" or "mixed", limited to ``dictionary``'s characters
    (for "zh"/"mixed" a CJK face is needed: ``cjk_font``)."""
    if kind != "en" and not cjk_font:
        kind = "en"
    parts: list[str] = []
    for _ in range(words):
        r = rng.random()
        if kind == "en" or (kind == "mixed" and r < 0.35):
            parts.append(str(EN_WORDS[rng.integers(0, len(EN_WORDS))]))
        elif r < 0.8 or kind == "zh":
            w = str(ZH_WORDS[rng.integers(0, len(ZH_WORDS))])
            if rng.random() < 0.2:  # a character from anywhere in the dictionary
                cjk = [c for c in dictionary if "\u4e00" <= c <= "\u9fff"]
                w += cjk[rng.integers(0, len(cjk))] if cjk else ""
            parts.append(w)
        else:
            parts.append(_number(rng))
        if kind != "en" and rng.random() < 0.3:
            parts.append(_number(rng))
    sep = " " if kind == "en" else ""
    text = sep.join(parts) if kind != "mixed" else "".join(
        p if "\u4e00" <= p[0] <= "\u9fff" else f" {p} " for p in parts).strip()
    text = " ".join(text.split())
    allowed = set(dictionary) | {" "}
    return "".join(c for c in text if c in allowed).strip()


def _pick_font(rng: np.random.Generator, kind: str) -> fonts.FontFile:
    faces = fonts.available(cjk=True) if kind != "en" else fonts.available()
    if not faces:
        raise FileNotFoundError(f"no font installed for {kind} text: {fonts.PIP_LINE}")
    return faces[int(rng.integers(0, len(faces)))]


def _degrade(img: np.ndarray, rng: np.random.Generator, blur: float, noise: float,
             ) -> np.ndarray:
    from PIL import Image, ImageFilter

    pil = Image.fromarray(img)
    if blur > 0:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    out = np.asarray(pil, dtype=np.float64) + rng.normal(0, noise, img.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A light background [h, w, 3] f64 lit unevenly from one side."""
    bg = 200 + 50 * rng.random(3)
    ramp = np.linspace(-1, 1, w)[None, :] * rng.uniform(-15, 15) + \
        np.linspace(-1, 1, h)[:, None] * rng.uniform(-10, 10)
    return np.clip(bg[None, None, :] + ramp[..., None], 0, 255)


def _ink(paper: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    color = 70 * rng.random(3)
    return paper * (1 - mask[..., None]) + color * mask[..., None]


def _rotate(mask: np.ndarray, degrees: float) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(np.rint(mask * 255).astype(np.uint8))
    rot = img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)
    return np.asarray(rot, dtype=np.float64) / 255.0


def render_line(text: str, face: fonts.FontFile, size: int, rng: np.random.Generator,
                *, rotate: float = 0.0, blur: float = 0.0, noise: float = 3.0) -> np.ndarray:
    """``text`` drawn ``size`` pixels high in ``face``, as an RGB uint8 crop with a margin
    around it, as a detector would cut it out of a page."""
    from PIL import Image, ImageDraw

    font = fonts.load(face, size)
    x0, y0, x1, y1 = font.getbbox(text)
    mx, my = max(4, size // 4), max(3, size // 5)
    w, h = x1 - x0 + 2 * mx, y1 - y0 + 2 * my
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((mx - x0, my - y0), text, fill=255, font=font)
    mask = np.asarray(canvas, dtype=np.float64) / 255.0
    if rotate:
        mask = _rotate(mask, rotate)
    return _degrade(_ink(_paper(h, w, rng), mask, rng).astype(np.uint8), rng, blur, noise)


def random_line(rng: np.random.Generator, dictionary: str, kind: str | None = None,
                ) -> tuple[np.ndarray, str]:
    """A degraded line crop of random kind, face, size and degradation, and its text."""
    kind = kind or str(rng.choice(["zh", "en", "mixed"]))
    face = _pick_font(rng, kind)
    text = sample_text(rng, kind, dictionary, face.cjk, words=int(rng.integers(2, 5)))
    img = render_line(text, face, int(rng.integers(22, 40)), rng,
                      rotate=float(rng.uniform(-1.5, 1.5)), blur=float(rng.uniform(0, 0.8)),
                      noise=float(rng.uniform(2, 8)))
    return img, text


def render_page(h: int, w: int, rng: np.random.Generator, dictionary: str,
                kinds: Sequence[str] = ("zh", "en", "mixed"), max_lines: int = 6,
                ) -> Page:
    """A page [h, w] of up to ``max_lines`` lines stacked with random gaps and indents, the
    whole page turned by up to 1 degree; each line's box is where its ink landed."""
    from PIL import Image, ImageDraw

    lines: list[tuple[np.ndarray, str]] = []  # (mask of the line alone, text)
    top = int(rng.integers(6, 20))
    while len(lines) < max_lines:
        kind = str(kinds[len(lines) % len(kinds)])
        face = _pick_font(rng, kind)
        size = int(rng.integers(18, 34))
        if top + size * 1.4 > h - 6:
            break
        font = fonts.load(face, size)
        left = int(rng.integers(6, max(7, w // 8)))
        text = sample_text(rng, kind, dictionary, face.cjk, words=int(rng.integers(2, 5)))
        while text and left + font.getlength(text) > w - 6:  # shorten until it fits
            text = text[:-1].rstrip()
        if text:
            canvas = Image.new("L", (w, h), 0)
            ImageDraw.Draw(canvas).text((left, top), text, fill=255, font=font)
            lines.append((np.asarray(canvas, dtype=np.float64) / 255.0, text))
        top += int(size * rng.uniform(1.5, 2.4))
    angle = float(rng.uniform(-1.0, 1.0))
    masks = [_rotate(m, angle) for m, _ in lines]
    ink = np.max(masks, axis=0) if masks else np.zeros((h, w))
    img = _degrade(_ink(_paper(h, w, rng), ink, rng).astype(np.uint8), rng,
                   float(rng.uniform(0, 0.7)), float(rng.uniform(2, 6)))
    out = []
    for m, (_, text) in zip(masks, lines):
        ys, xs = np.nonzero(m > 0.25)
        if len(xs):
            out.append(Line(text, (int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                                   int(ys.max()) + 1)))
    return Page(img, out)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0

