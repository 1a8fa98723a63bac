"""Building generated C: cython + cc into a Python extension, cached by content hash.

The cache folder is keyed by a hash of everything the build depends on: the graph (structure,
names, constant bytes), the build options, the qnnc version, and the sources of the code
generator and csrc headers (so a changed emitter never serves a stale module). An unchanged
recompile loads the cached .so without generating or compiling anything. A build happens in
a temporary folder renamed into place when complete, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

from ir.errors import QnncError
from ir.graph import Graph
from targets.c.emitter import Renderer
from targets.c.model import CSources, generate, generate_profiles
from targets.host.bundle import bundle_files
from targets.host.cache import clean_stale
from targets.host.cpu import arch_flags, effective_level, resolve_level
from targets.host.wrapper import wrapper_pyx

CSRC = Path(__file__).resolve().parents[2] / "csrc"
_CODEGEN_DIRS = (Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "c",
                 Path(__file__).resolve().parents[1] / "staged")
DONE = "build.json"


class HostRenderer(Renderer):
    name = "host"


@dataclass(frozen=True)
class BuildOptions:
    """What the generated module depends on besides the graph."""

    cpu: str = "auto"  # generic | avx2 | avx512vnni | native | auto
    threads: int = 1
    opt: str = "-O3"
    werror: bool = False  # -Wall -Werror on the generated C (tests turn it on)
    extra_cflags: tuple[str, ...] = ()

    def resolved(self) -> BuildOptions:
        return BuildOptions(resolve_level(self.cpu), max(1, self.threads), self.opt, self.werror,
                            tuple(self.extra_cflags))

    def u8_any_weights(self) -> bool:
        """Whether this build's u8 x s8 tile is vpdpbusd (AVX-512 VNNI), exact for any int8
        weights (targets/c/q8_gemm.layout_for)."""
        return effective_level(self.cpu) == "avx512vnni"

    def cflags(self) -> list[str]:
        # -fno-ipa-cp: gcc 12.2 at -O3 builds the PP-OCRv4 detector's f32 C wrongly (a
        # probability map off by up to 1.0; -O2, or -O3 without interprocedural constant
        # propagation, is right, and ASan/UBSan/valgrind report nothing). Not root-caused
        # yet; tests/models/test_shipped_models.py pins the whole graph against onnxruntime.
        flags = [self.opt, *arch_flags(self.cpu), "-fno-ipa-cp", "-fPIC", "-std=c11"]
        if self.threads > 1:
            flags.append("-fopenmp")
        return flags + list(self.extra_cflags)


@dataclass
class BuildResult:
    folder: Path
    module_path: Path
    module_name: str
    cache_hit: bool
    seconds: float
    arena_bytes: int
    weight_bytes: int
    layers: list[dict] = field(default_factory=list)

    def load(self) -> ModuleType:
        return load_extension(self.module_path, self.module_name)


def find_cc() -> str:
    """The C compiler: $CC, else cc; a clear QnncError when there is none."""
    cc = os.environ.get("CC") or "cc"
    exe = cc.split()[0]
    if shutil.which(exe) is None:
        raise QnncError(
            f"no C compiler found (looked for {exe!r}); install gcc (apt-get install gcc) or "
            "set CC to a C compiler"
        )
    return cc


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qnnc"


def _codegen_digest() -> str:
    h = hashlib.sha256()
    files = sorted(CSRC.glob("*.h")) + sorted(p for d in _CODEGEN_DIRS for p in d.glob("*.py"))
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def graph_digest(graph: Graph) -> str:
    """A hash of the graph's structure, names, types and constant bytes."""
    h = hashlib.sha256()

    def put(s: object) -> None:
        b = repr(s).encode("utf-8", "backslashreplace")
        h.update(len(b).to_bytes(8, "little") + b)

    put(graph.name)
    for v in graph.inputs:
        put(("in", v.name, str(v.type)))
    for v in graph.constants:
        put(("const", v.name, str(v.type)))
        assert v.data is not None
        h.update(v.data.tobytes())
    for n in graph.nodes:
        put(("node", n.name, n.op, sorted(n.attrs.items()),
             [None if v is None else v.name for v in n.inputs],
             [(v.name, str(v.type)) for v in n.outputs]))
    for v in graph.outputs:
        put(("out", v.name))
    return h.hexdigest()


def cache_key(graph: Graph | list[Graph], opts: BuildOptions, version: str) -> str:
    h = hashlib.sha256()
    graphs = graph if isinstance(graph, list) else [graph]
    for part in ("+".join(graph_digest(g) for g in graphs),
                 json.dumps(asdict(opts), sort_keys=True), version, _codegen_digest(),
                 sys.version, find_cc()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def build_host(graph: Graph | list[Graph], opts: BuildOptions = BuildOptions(), *,
               cache_dir: str | os.PathLike[str] | None = None, version: str = "",
               renderer: Renderer | Callable[[], Renderer] | None = None,
               progress: Callable[[int, int | None], None] | None = None,
               titles: list[str] | None = None) -> BuildResult:
    """Generate, compile and cache ``graph``'s extension module (or reuse the cached one).
    A list of graphs is one model compiled for several shape profiles (``titles`` name
    them): one module, weights shared, ``Session(k)`` per profile. ``renderer`` (or a
    factory of one, called once per profile) generates the C of another target (an
    accelerator's staged code, run on this host); the default is the host's own.
    ``progress(done, total)`` is called as the build's steps finish (C generation, cython,
    the compiler jobs, link)."""
    step = progress or (lambda done, total: None)
    start = time.perf_counter()
    opts = opts.resolved()
    cc = find_cc()
    if renderer is not None and not isinstance(renderer, Renderer):
        tname = renderer().name  # a factory, one renderer per shape profile
    else:
        tname = renderer.name if renderer is not None else "host"
    key = cache_key(graph, opts, version + "/" + tname)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"{tname}-{key[:20]}"
    name = f"qnnc_model_{key[:16]}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    meta_path = folder / DONE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return BuildResult(folder, folder / (name + suffix), name, True,
                           time.perf_counter() - start, meta["arena_bytes"],
                           meta["weight_bytes"], meta["layers"])
    root.mkdir(parents=True, exist_ok=True)
    clean_stale(root)  # temporary folders of builds killed over an hour ago
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        step(0, BUILD_STEPS)
        src = _generate(graph, opts, renderer, titles, version)
        step(1, BUILD_STEPS)
        for fname, data in src.files.items():
            p = tmp / fname
            p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data)
        for h in sorted(CSRC.glob("*.h")):
            shutil.copy(h, tmp / h.name)
        (tmp / f"{name}.pyx").write_text(wrapper_pyx(
            graph if isinstance(graph, list) else [graph], src.arenas, src.weight_bytes,
            counters=renderer is not None, checks=src.checks))
        for fname, text in bundle_files(src.c_files, opts.cflags(), opts.threads).items():
            (tmp / fname).write_text(text)
        _compile(tmp, name, suffix, cc, opts, src.c_files, lambda k: step(1 + k, BUILD_STEPS))
        layers = [asdict(x) for x in src.layers]
        meta = {"arena_bytes": src.arena_bytes, "weight_bytes": src.weight_bytes,
                "layers": layers, "options": asdict(opts), "version": version,
                "arenas": src.arenas}
        (tmp / DONE).write_text(json.dumps(meta, indent=1) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process built it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildResult(folder, folder / (name + suffix), name, False,
                       time.perf_counter() - start, src.arena_bytes, src.weight_bytes, layers)


def _generate(graph: Graph | list[Graph], opts: BuildOptions,
              renderer: Renderer | Callable[[], Renderer] | None, titles: list[str] | None,
              version: str) -> CSources:
    def make() -> Renderer:
        r = (HostRenderer(opts.threads) if renderer is None else
             renderer if isinstance(renderer, Renderer) else renderer())
        r.u8_any_weights = opts.u8_any_weights()
        return r

    if not isinstance(graph, list):
        return generate(graph, make(), version=version)
    if not isinstance(renderer, Renderer):
        return generate_profiles(graph, [make() for _ in graph],
                                 titles or [str(k) for k in range(len(graph))],
                                 version=version)
    raise QnncError("several shape profiles need a renderer factory, one renderer each")


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise QnncError(f"{what}: cannot run {cmd[0]!r}; install it or set CC") from None
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip()
        if len(msg) > 4000:
            msg = msg[:4000] + "\n... (truncated)"
        raise QnncError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{msg}")


#: progress steps of a build: C generation, cython, the compiler jobs (model.c, weights.c and
#: the wrapper; a model of several shape profiles has more, counted as one), link
BUILD_STEPS = 6


def _compile(folder: Path, name: str, suffix: str, cc: str, opts: BuildOptions,
             c_files: list[str], done: Callable[[int], None] = lambda k: None) -> None:
    if importlib.util.find_spec("Cython") is None:
        raise QnncError("Cython is not installed; install it (pip install cython)")
    ccv = cc.split()
    flags = opts.cflags()
    strict = ["-Wall", "-Werror"] if opts.werror else []
    pyinc = sysconfig.get_paths()["include"]
    extra = ["-fopenmp"] if opts.threads > 1 else []
    extra += list(opts.extra_cflags)
    _run([sys.executable, "-m", "cython", "-3", f"{name}.pyx", "-o", f"{name}.c"], folder,
         "cython")
    done(1)
    objs = [c[:-2] + ".o" for c in c_files]
    jobs = [([*ccv, *flags, *strict, "-I.", "-c", c, "-o", o], f"compiling {c}")
            for c, o in zip(c_files, objs)]
    jobs.append(
        # the wrapper only checks arguments and calls qnnc_run: -O0 saves seconds per build
        ([*ccv, "-O0", "-fPIC", *extra, "-I.", f"-I{pyinc}", "-c", f"{name}.c", "-o",
          f"{name}.o"], "compiling the Cython wrapper"))
    with ThreadPoolExecutor(min(len(jobs), os.cpu_count() or 2, 4)) as pool:
        futures = [pool.submit(_run, cmd, folder, what) for cmd, what in jobs]
        for k, f in enumerate(as_completed(futures), start=2):
            f.result()
            done(min(k, 4))
    link = [*ccv, *flags, "-shared", *objs, f"{name}.o", "-o", name + suffix]
    _run(link + (["-lm"]), folder, "linking")
    done(5)
    for o in (*objs, f"{name}.o", f"{name}.c"):
        (folder / o).unlink(missing_ok=True)


def build_c_library(graph: Graph, folder: Path, opts: BuildOptions = BuildOptions(),
                    renderer: Renderer | None = None) -> Path:
    """Generate ``graph``'s C into ``folder`` and link it alone (no Python wrapper) as
    libmodel.so: the quick path for tests that call qnnc_run through ctypes."""
    opts = opts.resolved()
    cc = find_cc().split()
    folder.mkdir(parents=True, exist_ok=True)
    r = renderer or HostRenderer(opts.threads)
    r.u8_any_weights = opts.u8_any_weights()
    src = generate(graph, r)
    for fname, data in src.files.items():
        p = folder / fname
        p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data)
    for h in sorted(CSRC.glob("*.h")):
        shutil.copy(h, folder / h.name)
    strict = ["-Wall", "-Werror"] if opts.werror else []
    _run([*cc, *opts.cflags(), *strict, "-shared", "-I.", *src.c_files, "-o",
          "libmodel.so", "-lm"], folder, "compiling the model")
    return folder / "libmodel.so"


#: libgomp's wait policy for the OpenMP threads of multi-threaded builds where libgomp runs
#: their loops (not Linux with GCC, where csrc/qnnc_pool.h does and reads only
#: OMP_WAIT_POLICY=ACTIVE), unless the user set OMP_WAIT_POLICY: threads sleep at the end of
#: a parallel loop instead of spinning for good.
#: A thread spinning without end takes the time slice its sibling needs when other work
#: shares the cores (resnet50 at 2 threads on a loaded 2-core machine: 107.5 ms spinning,
#: 66.7 ms passive; PP-OCRv4 det: 81 vs 41 ms).
DEFAULT_OMP_WAIT_POLICY = "PASSIVE"
#: ... but first a spin (libgomp's GOMP_SPINCOUNT, given when the user set neither it nor
#: OMP_WAIT_POLICY; libgomp's own default count, about 2 ms on a Zen 4 core): a thread that
#: finds the next parallel loop within the spin needs no wake-up, and on a virtual machine
#: waking a thread whose CPU went idle cost up to milliseconds. With 5 ms between runs
#: (benchmarks/README.md, threads), 2 threads against 1 went from no gain to SqueezeNet
#: 1.85 vs 2.83 ms and MobileNetV2 2.88 vs 4.32; with one core kept busy, medians at 10000
#: and at this count were alike (the per-run team then keeps one thread) and the slowest
#: runs shorter (MobileNetV2 6.5 vs 32 ms).
DEFAULT_GOMP_SPINCOUNT = "300000"


def set_omp_defaults() -> None:
    """qnnc's OpenMP settings in the environment, where the user has not given their own;
    libgomp reads them when it is first loaded, so this runs before that."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = DEFAULT_GOMP_SPINCOUNT
    os.environ.setdefault("OMP_WAIT_POLICY", DEFAULT_OMP_WAIT_POLICY)


def load_extension(path: Path, name: str) -> ModuleType:
    """Import the built extension by path (no sys.path changes), with qnnc's OpenMP
    defaults set first (set_omp_defaults)."""
    if name in sys.modules:
        return sys.modules[name]
    set_omp_defaults()
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    if spec is None:
        raise QnncError(f"cannot load the compiled model {str(path)!r}")
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules[name] = mod
    return mod
