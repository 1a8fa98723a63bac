"""`qnnc targets`: the built-in target profiles (or a user's target file) with their key
figures and where each figure comes from."""

from __future__ import annotations

import argparse

from compiler.cli_common import print_json
from targets.profiles import BUILTIN_TARGETS, Profile, load_target, profile_to_data
from targets.tables import table

TARGETS_EPILOG = """\
examples:
  qnnc targets                       # key figures of every built-in target
  qnnc targets ascend910b -v         # one target, every figure with its source
  qnnc targets my_chip.toml -v       # check and show a target file
  qnnc targets --json                # everything, as JSON (the target-file format)

Figures are published (with the document), measured, derived (with the arithmetic) or
assumed (with the reason); a target file uses the same format as the --json output."""


def _mib(n: float) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024**2 else f"{n / 1024**2:.0f} MiB"


def _row(p: Profile) -> list[str]:
    bufs = " ".join(f"{b.name}:{_mib(b.bytes)}" for b in sorted(p.buffers, key=lambda b: b.level))
    rated = f" (rated {p.rated_int8_tops:g})" if p.rated_int8_tops not in (None, p.int8_tops) \
        else ""
    return [p.name, f"{p.int8_tops:.4g}{rated}", f"{p.clock_hz / 1e9:.2f}", str(p.cores),
            f"{p.offchip.bandwidth / 1e9:g}",
            f"{p.layout.activation}/C0={p.layout.channel_block}", p.activation_dtype, bufs]


def _details(p: Profile) -> str:
    lines = [f"{p.name}: {p.description}"]

    def fig(label: str, value: object, src: str | None) -> None:
        lines.append(f"  {label:<28} {value!s:<16} {src or ''}")

    fig("int8_tops", p.int8_tops, p.sources.get("int8_tops"))
    if p.rated_int8_tops is not None:
        fig("rated_int8_tops", p.rated_int8_tops, p.sources.get("rated_int8_tops"))
    fig("modelled int8 TOPS", f"{p.modelled_int8_tops():.1f}",
        "derived: cores x clock x MACs/cycle x 2")
    for k in ("clock_hz", "cores", "activation_dtype"):
        fig(k, getattr(p, k), p.sources.get(k))
    if p.launch_us:
        fig("launch_us (per kernel)", p.launch_us, p.sources.get("launch_us"))
    for dt, v in p.matrix.macs_per_cycle.items():
        fig(f"matrix MACs/cycle/core {dt}", v, p.matrix.sources.get(f"macs_per_cycle.{dt}"))
        fig(f"matrix block {dt}", "x".join(map(str, p.matrix.block[dt])),
            p.matrix.sources.get(f"block.{dt}"))
    fig("vector width bytes", p.vector.width_bytes, p.vector.sources.get("width_bytes"))
    fig("vector units/core", p.vector.units, p.vector.sources.get("units"))
    fig("layout", f"{p.layout.activation} C0={p.layout.channel_block}",
        p.layout.sources.get("channel_block"))
    fig("weight layout", p.layout.weight, p.layout.sources.get("weight"))
    for m in (p.offchip, p.l2):
        if m is not None:
            fig(f"{m.name} bytes", m.bytes, m.sources.get("bytes"))
            fig(f"{m.name} bandwidth B/s", f"{m.bandwidth:g}", m.sources.get("bandwidth"))
            if m.setup_bytes:
                fig(f"{m.name} setup (bytes/transfer)", f"{m.setup_bytes:g}",
                    m.sources.get("setup_bytes"))
    for b in sorted(p.buffers, key=lambda b: b.level):
        share = f", shared by {b.shared_by}" if b.shared_by > 1 else ""
        fig(f"L{b.level} {b.name} bytes", b.bytes, b.sources.get("bytes"))
        lines.append(f"  {'':<28} holds {', '.join(b.roles)}; align {b.alignment} "
                     f"({b.sources.get('alignment', '')}); "
                     f"{'double-buffered' if b.double_buffered else 'single'}{share}")
    return "\n".join(lines)


def cmd_targets(args: argparse.Namespace) -> int:
    names = args.targets or list(BUILTIN_TARGETS)
    profs = [load_target(n) for n in names]
    if args.json:
        print_json([profile_to_data(p) for p in profs])
        return 0
    if args.verbose:
        print("\n\n".join(_details(p) for p in profs))
        return 0
    headers = ["target", "INT8 TOPS", "GHz", "cores", "GB/s", "layout", "act", "buffers"]
    print(table(headers, [_row(p) for p in profs], right=(2, 3, 4)))
    print("\n`qnnc targets NAME -v` shows every figure with its source.")
    return 0


def add_targets_parser(subs: argparse._SubParsersAction, sub, debug) -> None:  # noqa: ANN001
    """Register `qnnc targets` (``sub`` is cli._sub, passed in to avoid an import cycle)."""
    p = sub(subs, "targets", "list the target chips qnnc tiles for, with sourced figures",
            TARGETS_EPILOG, cmd_targets, debug)
    p.add_argument("targets", nargs="*", metavar="NAME|FILE",
                   help="built-in target names or .toml/.json target files (default: all)")
    p.add_argument("--json", action="store_true", help="print the profiles as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="every figure with its source")
