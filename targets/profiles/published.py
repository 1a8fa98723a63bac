"""Published throughput of the chips (or their cards) on a standard model: what the cost
model is held against (benchmarks/published_figures.py), and where the per-kernel launch
estimates of the profiles come from.

Each figure is device throughput as its vendor's model zoo publishes it, for ResNet-50 INT8
at 224x224, with the source (repository, file and commit, all public). The launch estimate
of a chip splits its batch-1 time into a fixed part and a per-image part with two published
batch sizes (t(b) = fixed + b x per_image), and divides the fixed part over the kernels a
vendor compiler runs for ResNet-50 (:data:`RESNET50_KERNELS`). It is an estimate: the fixed
part also holds input and output transfers, and the kernel count is the usual fusion's, not
read from the vendor's graph.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ResNet-50's kernels after the usual fusion (convolution + batch norm + ReLU, the residual
#: add into the convolution before it): 53 convolutions, the stem's max pool, the global
#: average pool and the fully connected layer; an estimate, not a vendor's count
RESNET50_KERNELS = 56

ASCEND_310P_RESNET50 = (
    "Ascend/ModelZoo-PyTorch, ACL_PyTorch/built-in/cv/Resnet50_mlperf/README.md at "
    "6aca6e286eb2 (AMCT INT8 quantisation, ATC for Ascend310P3, ais_bench throughput)")
MLU370_X4_RESNET50 = (
    "Cambricon/magicmind_cloud, buildin/cv/classification/resnet50_onnx/README.MD at "
    "40fdec81ca84 (MagicMind qint8_mixed_float16 on an MLU370-X4, mm_run throughput)")


@dataclass(frozen=True)
class Published:
    """One published figure: ``images_per_s`` of ``model`` at ``batch`` on the chip that
    qnnc's profile ``target`` describes (``device`` says what was measured)."""

    target: str
    device: str
    model: str
    batch: int
    images_per_s: float
    source: str

    @property
    def ms_per_batch(self) -> float:
        return self.batch / self.images_per_s * 1e3


def _series(target: str, device: str, source: str, figures: dict[int, float]
            ) -> list[Published]:
    return [Published(target, device, "resnet50", b, v, source) for b, v in figures.items()]


PUBLISHED: list[Published] = [
    *_series("ascend310p", "Ascend 310P3 (one chip)", ASCEND_310P_RESNET50,
             {1: 4089, 2: 6323, 4: 9492, 8: 9403, 16: 7748, 32: 7020, 64: 12141}),
    # the X4 card carries one MLU370 chip of 256 INT8 TOPS, the X8 two chips with 256 in all:
    # the same peak, so the X4's figures are held against the X8 profile (a stated caveat)
    *_series("mlu370x8", "MLU370-X4 card (one MLU370 chip)", MLU370_X4_RESNET50,
             {1: 1267.76, 4: 3747.53, 8: 6966.43}),
]


def split_fixed(target: str, small: int, large: int) -> tuple[float, float]:
    """(fixed ms, ms per image) of ``target``'s published ResNet-50 figures at batch sizes
    ``small`` and ``large``."""
    by_batch = {p.batch: p for p in PUBLISHED if p.target == target}
    t1, t2 = by_batch[small].ms_per_batch, by_batch[large].ms_per_batch
    per_image = (t2 - t1) / (large - small)
    return t1 - small * per_image, per_image


def launch_estimate_us(target: str, small: int, large: int) -> float:
    """The per-kernel launch estimate: the fixed part over RESNET50_KERNELS kernels."""
    fixed_ms, _ = split_fixed(target, small, large)
    return round(fixed_ms * 1e3 / RESNET50_KERNELS, 1)


def launch_source(target: str, small: int, large: int) -> str:
    fixed_ms, per_image = split_fixed(target, small, large)
    return (f"estimate: published ResNet-50 INT8 at batch {small} and {large} give "
            f"{fixed_ms * 1e3:.0f} us fixed + {per_image * 1e3:.1f} us per image; the fixed "
            f"part over {RESNET50_KERNELS} fused kernels (targets/profiles/published.py)")
