"""One vocabulary across the commands: every command's --help ends with examples, and an
option that means the same thing has the same spelling wherever it appears."""

from __future__ import annotations

import argparse
from collections import defaultdict

from compiler.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, p: argparse.ArgumentParser) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[name.strip()] = p
            return
        for n, sp in subs[0].choices.items():
            walk(f"{name} {n}", sp)

    walk("", build_parser())
    return out


def test_every_command_help_has_examples() -> None:
    missing = [name for name, p in _commands().items()
               if "examples:\n  qnnc " not in (p.epilog or "")]
    assert not missing, f"no examples section in --help of: {missing}"


def test_one_spelling_per_option() -> None:
    """The option strings of each destination agree across commands: --input everywhere
    input data is read, --target, --precision, --calib, --calib-method, --threads, --cpu,
    --seed, -q/--quiet, --json, ..."""
    spellings: dict[str, dict[tuple[str, ...], list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, p in _commands().items():
        for a in p._actions:
            if a.option_strings and a.dest not in ("help",):
                spellings[a.dest][tuple(sorted(a.option_strings))].append(name)
    # the command's output: -o everywhere (a folder for compile and golden record, a file for
    # example and run: each says which in its help)
    outputs = {"output_dir", "output"}
    differ = {dest: dict(by) for dest, by in spellings.items()
              if len(by) > 1 and dest not in outputs}
    assert not differ, differ
    for dest in outputs:
        for opts in spellings[dest]:
            assert "-o" in opts, (dest, opts)
    assert ("--input", "--inputs") in spellings["inputs"] or ("--input",) in spellings["input"]
