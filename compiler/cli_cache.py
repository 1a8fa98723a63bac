"""`qnnc cache info` and `qnnc cache clear`: where the build cache is, how big it is, and
emptying it (targets/host/cache.py does the work; only folders qnnc names are touched)."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.budget import human_bytes
from compiler.cli_common import print_json
from targets.host.build import default_cache_dir
from targets.host.cache import cache_info, clear_cache

CACHE_EPILOG = """\
examples:
  qnnc cache info                 # where the build cache is and how big
  qnnc cache clear                # remove every cached build
  qnnc cache info --cache-dir DIR # another cache folder (CompileOptions.cache_dir)

Builds of generated C are cached by content hash ($XDG_CACHE_HOME/qnnc, else ~/.cache/qnnc),
so recompiling an unchanged model loads the built module at once. A build killed midway
leaves a temporary .NAME.RANDOM folder; the next build removes those over an hour old."""


def _folder(args: argparse.Namespace) -> Path:
    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


def cmd_cache(args: argparse.Namespace) -> int:
    root = _folder(args)
    if args.action == "clear":
        gone = clear_cache(root)
        print(f"removed {gone.builds} build(s) and {gone.unfinished} unfinished one(s) from "
              f"{root} ({human_bytes(gone.bytes)})")
        return 0
    info = cache_info(root)
    if args.json:
        print_json({"folder": str(root), "builds": info.builds, "unfinished": info.unfinished,
                    "bytes": info.bytes})
        return 0
    print(f"cache     {root}{'' if root.is_dir() else ' (not created yet)'}")
    print(f"builds    {info.builds} finished, {info.unfinished} unfinished (in progress or "
          "killed)")
    print(f"size      {human_bytes(info.bytes)} ({info.bytes} bytes)")
    return 0


def add_cache_parser(subs: argparse._SubParsersAction, sub, debug) -> None:  # noqa: ANN001
    """Register `qnnc cache` (``sub`` is cli._sub, passed in to avoid an import cycle)."""
    p = sub(subs, "cache", "show or clear the cache of built C modules", CACHE_EPILOG,
            cmd_cache, debug)
    p.add_argument("action", choices=("info", "clear"), help="info: where and how big; "
                   "clear: remove the cached builds")
    p.add_argument("--cache-dir", metavar="DIR", help="the cache folder (default: "
                   f"{default_cache_dir()})")
    p.add_argument("--json", action="store_true", help="info as JSON")
