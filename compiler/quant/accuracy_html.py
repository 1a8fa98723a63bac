"""The per-layer accuracy report (compiler/quant/accuracy.py) as a JSON file or a web page.

:func:`write_report` writes ``report`` to ``path``: a ``.json`` path gets
``AccuracyReport.to_dict()`` as strict JSON (infinite SQNRs as the strings "inf"/"-inf"), an
``.html`` path one self-contained page (inline CSS and SVG: no script, no network) with

- a line chart of SQNR in dB along the network (x: layer index in graph order, then the
  outputs; exact tensors, SQNR +inf, drawn on a marked band at the top, −inf at the bottom),
  the ``worst`` layers highlighted and named;
- the worst layers, each with its cause, the figures behind it and the fix;
- the table of every tensor: SQNR, cosine, largest error, the diagnosis figures (clipped
  share, its share of the error, levels, outlier channel ratio), cause and fix.

Tensor and layer names come from the model file, so every one is escaped. The file is written
atomically (a temporary file in the same folder, then renamed): a failure leaves nothing
half-written. ``qnnc compile ... --eval DATA --eval-report PATH`` calls the same function.

Example::

    cm = compiler.compile_model("m.onnx", precision="int8", calibration=c, eval_data=e)
    write_report(cm.accuracy, "accuracy.html")
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from html import escape
from pathlib import Path

from compiler.errors import QnncError
from compiler.quant.accuracy import (
    CLIPPED_ERROR_SHARE,
    COARSE_LEVELS,
    INHERITED_DB,
    OUTLIER_RATIO,
    AccuracyReport,
    LayerRow,
)

#: the file kinds :func:`write_report` writes, by suffix
SUFFIXES = (".json", ".html")

# chart geometry (SVG user units)
_W, _H = 960, 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 20, 34, 44
_INF_BAND = 16  # the +inf band sits this far above the finite values (−inf this far below)


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if a report can be written there (a .json or .html name in an
    existing folder), else a QnncError saying why — callers check before the work starts."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise QnncError(f"cannot write the accuracy report {str(p)!r}: its name must end in "
                        ".json (the figures as JSON) or .html (a web page with a chart)")
    parent = p.absolute().parent
    if not parent.is_dir():
        raise QnncError(f"cannot write the accuracy report {str(p)!r}: folder "
                        f"{str(parent)!r} does not exist")
    if p.is_dir():
        raise QnncError(f"cannot write the accuracy report {str(p)!r}: it is a folder")
    return p


def write_report(report: AccuracyReport, path: str | os.PathLike[str], *,
                 worst: int = 5) -> Path:
    """Write ``report`` as JSON (``.json``) or a self-contained HTML page (``.html``)
    highlighting the ``worst`` layers; atomically. Returns the path written."""
    p = check_report_path(path)
    text = to_json(report) if p.suffix.lower() == ".json" else to_html(report, worst=worst)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.absolute().parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def to_json(report: AccuracyReport) -> str:
    """The report's ``to_dict()`` as strict JSON (no NaN or Infinity tokens)."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def to_html(report: AccuracyReport, *, worst: int = 5) -> str:
    """One self-contained HTML page (see the module docstring)."""
    rows = report.layers + report.outputs
    worst_rows = report.worst(worst)
    marked = {r.tensor for r in worst_rows}
    out_db = report.output_sqnr_db
    method = f", calibrated with {escape(report.calib_method)}" if report.calib_method else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(report.title)}: per-layer SQNR</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
        f"<p>{report.samples} sample(s){method}; lowest output SQNR "
        f"<b>{_db(out_db)} dB</b>. SQNR = 10&#183;log10(&#931;ref&#178; / &#931;err&#178;): "
        "every 6 dB is about one bit.</p>",
        _chart(rows, len(report.layers), marked),
        f"<h2>The {len(worst_rows)} worst layer(s)</h2>",
        _worst_list(worst_rows),
        "<h2>Every tensor</h2>",
        _table(report.layers, "layer", marked, 0),
        "<h2>Outputs</h2>",
        _table(report.outputs, "output", set(), len(report.layers)),
        f"<p class=\"note\">{_THRESHOLDS}</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


_CSS = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 20px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.worst{background:#fde8e8}th{background:#f0f0f0}"
    "svg{border:1px solid #ddd;background:#fff;max-width:100%;height:auto}"
    ".note{color:#555}code{background:#f4f4f4;padding:0 3px}"
)

_THRESHOLDS = escape(
    f"Causes, tried in this order: inherited (at most {INHERITED_DB:g} dB below the worst "
    f"tensor its layer reads), range clipped (clipped values carry at least "
    f"{CLIPPED_ERROR_SHARE:.0%} of the error), outlier channel (one channel at least "
    f"{OUTLIER_RATIO:g}x the median channel's max|x|), scale too coarse (the RMS spans fewer "
    f"than {COARSE_LEVELS:g} steps), table resolution (a QLut), else none dominant.")


def _db(x: float) -> str:
    return "+inf" if x == math.inf else ("-inf" if x == -math.inf else f"{x:.2f}")


def _num(x: float | None, fmt: str) -> str:
    if x is None:
        return ""
    return format(x, fmt) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _pct(x: float | None, fmt: str) -> str:
    return "" if x is None else _num(100 * x, fmt) + "%"


def _chart(rows: list[LayerRow], n_layers: int, marked: set[str]) -> str:
    """The SVG line chart of SQNR along the network."""
    if not rows:
        return "<p>No tensor was compared.</p>"
    finite = [r.sqnr_db for r in rows if math.isfinite(r.sqnr_db)]
    lo = math.floor(min(finite, default=0.0) / 10) * 10
    hi = math.ceil(max(finite, default=60.0) / 10) * 10
    if hi <= lo:
        hi = lo + 10
    axis_y = _H - _BOTTOM  # the x axis, and the −inf band when there is one
    minus_inf = any(r.sqnr_db == -math.inf for r in rows)
    plot_top, plot_bottom = _TOP + _INF_BAND, axis_y - (_INF_BAND if minus_inf else 0)
    span_x, pad = _W - _LEFT - _RIGHT, 16

    def x_of(i: int) -> float:
        inner = span_x - 2 * pad
        return _LEFT + pad + (inner * i / (len(rows) - 1) if len(rows) > 1 else inner / 2)

    def y_of(db: float) -> float:
        if db == math.inf:
            return float(_TOP)
        if db == -math.inf:
            return float(axis_y)
        return plot_bottom - (db - lo) / (hi - lo) * (plot_bottom - plot_top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
           f'height="{_H}" role="img" aria-label="SQNR in dB per layer, in graph order">']
    step = next(s for s in (5, 10, 20, 50, 100, 1000) if (hi - lo) / s <= 8)
    tick = math.ceil(lo / step) * step
    while tick <= hi:
        y = y_of(tick)
        out.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{tick}</text>')
        tick += step
    out.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_W - _RIGHT}" y2="{_TOP}" stroke="#888" '
               'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{_LEFT - 6}" y="{_TOP + 4}" font-size="11" text-anchor="end">'
               'inf</text>')
    out.append(f'<text x="{_W - _RIGHT}" y="{_TOP - 6}" font-size="11" text-anchor="end" '
               'fill="#555">dashed line: exact (SQNR +inf), hollow points</text>')
    if minus_inf:
        out.append(f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_W - _RIGHT}" y2="{axis_y}" '
                   'stroke="#888" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{axis_y + 4}" font-size="11" '
                   'text-anchor="end">-inf</text>')
    out.append(f'<text x="14" y="{(plot_top + plot_bottom) / 2:.0f}" font-size="12" '
               f'transform="rotate(-90 14 {(plot_top + plot_bottom) / 2:.0f})" '
               'text-anchor="middle">SQNR (dB)</text>')
    out.append(f'<text x="{_LEFT + span_x / 2:.0f}" y="{_H - 8}" font-size="12" '
               'text-anchor="middle">layer index in graph order (then the outputs)</text>')
    every = max(1, math.ceil(len(rows) / 20))
    for i in range(0, len(rows), every):
        out.append(f'<text x="{x_of(i):.1f}" y="{axis_y + 16}" font-size="11" '
                   f'text-anchor="middle">{i}</text>')
    if n_layers < len(rows):
        xo = (x_of(n_layers - 1) + x_of(n_layers)) / 2 if n_layers else float(_LEFT)
        out.append(f'<line x1="{xo:.1f}" y1="{_TOP}" x2="{xo:.1f}" y2="{axis_y}" '
                   'stroke="#bbb" stroke-dasharray="2 3"/>')
        out.append(f'<text x="{xo + 4:.1f}" y="{axis_y - 4}" font-size="11" '
                   'fill="#555">outputs</text>')
    pts = " ".join(f"{x_of(i):.1f},{y_of(r.sqnr_db):.1f}" for i, r in enumerate(rows))
    out.append(f'<polyline points="{pts}" fill="none" stroke="#4a78b5" stroke-width="1.5"/>')
    for i, r in enumerate(rows):
        x, y = x_of(i), y_of(r.sqnr_db)
        cause = f" - {r.diagnosis.cause}" if r.diagnosis else ""
        tip = escape(f"#{i} {r.layer} ({r.tensor}): {_db(r.sqnr_db)} dB{cause}")
        bad = r.tensor in marked
        fill = "#c62828" if bad else ("#fff" if not math.isfinite(r.sqnr_db) else "#4a78b5")
        radius = 5 if bad else 3.5
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{fill}" '
                   f'stroke="#{"c62828" if bad else "4a78b5"}" stroke-width="1.5">'
                   f"<title>{tip}</title></circle>")
        if bad:
            out.append(f'<text x="{x:.1f}" y="{y - 9:.1f}" font-size="11" fill="#c62828" '
                       f'text-anchor="middle">{escape(r.layer)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _worst_list(rows: list[LayerRow]) -> str:
    if not rows:
        return "<p>None.</p>"
    items = []
    for r in rows:
        d = r.diagnosis
        why = (f": <b>{escape(d.cause)}</b> &#8212; {escape(d.detail)}<br>fix: "
               f"<code>{escape(d.fix)}</code>" if d is not None else "")
        items.append(f"<li><b>{escape(r.layer)}</b> ({escape(r.op)}, tensor "
                     f"<code>{escape(r.tensor)}</code>), {_db(r.sqnr_db)} dB{why}</li>")
    return "<ol>" + "\n".join(items) + "</ol>"


def _table(rows: list[LayerRow], first: str, marked: set[str], start: int) -> str:
    head = ("#", first, "op", "tensor", "SQNR dB", "cosine", "max |err|", "clipped",
            "clipped share of error", "levels (RMS/step)", "outlier channel ratio", "cause",
            "fix")
    out = ["<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for i, r in enumerate(rows, start=start):
        d = r.diagnosis
        nums = [_db(r.sqnr_db), f"{r.cosine:.6f}", f"{r.max_abs_err:.4g}"]
        if d is not None:
            nums += [_pct(d.clipped_share, ".3f"), _pct(d.clipped_error_share, ".1f"),
                     _num(d.levels, ".1f"), _num(d.outlier_ratio, ".1f")]
        else:
            nums += ["", "", "", ""]
        cls = ' class="worst"' if r.tensor in marked else ""
        cells = [f'<td class="n">{i}</td>', f"<td>{escape(r.layer)}</td>",
                 f"<td>{escape(r.op)}</td>", f"<td>{escape(r.tensor)}</td>"]
        cells += [f'<td class="n">{escape(v)}</td>' for v in nums]
        cells += [f"<td>{escape(d.cause) if d else ''}</td>",
                  f"<td>{escape(d.fix) if d else ''}</td>"]
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
