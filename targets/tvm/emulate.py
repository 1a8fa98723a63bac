"""Running an exported build here: the standalone program (standalone.py, ``model_run``) of
a tvm:aarch64 or tvm:riscv64 build, emulated by ``qemu-<arch>`` when that is on the PATH
(Debian: ``apt-get install qemu-user``), so the board's own machine code is checked before
it ships; a program for this machine's architecture (an x86_64 target given as JSON) runs
directly."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import InputError, QnncError
from targets.tvm.build import SIGNATURE_FILE
from targets.tvm.checks import failure
from targets.tvm.standalone import PROGRAM
from targets.tvm.toolchains import elf_info

#: seconds one emulated run may take
TIMEOUT = 600


def qemu_for(arch: str) -> str | None:
    """The qemu-user program for ``arch`` on the PATH, or None."""
    return shutil.which(f"qemu-{arch}")


def launcher(arch: str) -> list[str] | None:
    """The command prefix that runs a program for ``arch`` here ([] for this machine's own
    architecture), or None."""
    if arch == platform.machine():
        return []
    qemu = qemu_for(arch)
    return None if qemu is None else [qemu]


def emulator(folder: Path) -> EmulatedModule | None:
    """The build in ``folder`` run by its standalone program, if it has one and it can run
    here: under qemu-user for another architecture (when that is installed), directly for
    this machine's."""
    program = folder / PROGRAM
    if not program.is_file() or not (folder / SIGNATURE_FILE).is_file():
        return None
    prefix = launcher(elf_info(program).arch)
    if prefix is None:
        return None
    return EmulatedModule(prefix, program, json.loads((folder / SIGNATURE_FILE).read_text()))


class EmulatedModule:
    """``Session().run(wanted, feeds)`` as a host build offers it, by running the program."""

    def __init__(self, prefix: list[str], program: Path, sig: Mapping[str, Any]) -> None:
        self.prefix, self.program, self.sig = prefix, program, sig
        self.how = f"{program} under {prefix[0]}" if prefix else str(program)

    def Session(self, profile_index: int = 0) -> EmulatedModule:  # noqa: N802 - the host's name
        if profile_index != 0:
            raise QnncError("the tvm target builds one shape profile")
        return self

    def run(self, wanted: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="qnnc-emulated-") as tmp:
            work = Path(tmp)
            args = []
            for k, entry in enumerate(self.sig["inputs"]):
                if entry["name"] not in feeds:
                    raise InputError(f"input {entry['name']!r} was not given")
                a = np.asarray(feeds[entry["name"]], dtype=entry["dtype"])
                if list(a.shape) != entry["shape"]:
                    raise InputError(f"input {entry['name']!r} has shape {list(a.shape)}, "
                                     f"the model expects {entry['shape']}")
                np.asarray(a, order="C").astype(a.dtype.newbyteorder("<")).tofile(
                    work / f"input{k}.bin")
                args.append(f"input{k}.bin")
            try:
                done = subprocess.run([*self.prefix, str(self.program.resolve()), *args], cwd=work,
                                      capture_output=True, text=True, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                raise QnncError(f"{self.how} took over {TIMEOUT} s") from None
            if done.returncode != 0:
                error = failure(RuntimeError(done.stderr), self.sig.get("checks", {}))
                if error is not None:
                    raise error
                raise QnncError(f"{self.how} failed (status {done.returncode}): "
                                f"{done.stderr.strip()[-1000:]}")
            by_name = {}
            for k, entry in enumerate(self.sig["outputs"]):
                data = np.fromfile(work / f"output{k}.bin",
                                   dtype=np.dtype(entry["dtype"]).newbyteorder("<"))
                by_name[entry["name"]] = data.astype(entry["dtype"]).reshape(entry["shape"])
        return [by_name[n] for n in wanted]

