"""The built-in profiles carry docs/targets.md's figures, each with its source."""

from __future__ import annotations

import json

import pytest

from targets.profiles import (
    BUILTIN_TARGETS,
    all_builtin,
    builtin_profile,
    load_target,
    profile_from_data,
    profile_to_data,
)
from targets.profiles import host as host_mod

KiB = 1024


def _src(p, key: str) -> str:  # noqa: ANN001
    return p.sources[key]


def test_ascend910b_figures() -> None:
    p = builtin_profile("ascend910b")
    assert p.cores == 24 and "ai_core_cnt" in _src(p, "cores")
    assert p.clock_hz == 1.8e9 and "1800 MHz" in _src(p, "clock_hz")
    assert p.matrix.macs_per_cycle["i8"] == 8192 and p.matrix.block["i8"] == (16, 32, 16)
    assert p.matrix.macs_per_cycle["f16"] == 4096
    sizes = {b.name: b.bytes for b in p.buffers}
    assert sizes == {"L0A": 64 * KiB, "L0B": 64 * KiB, "L0C": 128 * KiB, "UB": 192 * KiB,
                     "L1": 512 * KiB}
    assert "l0_c_size" in p.buffer("L0C").sources["bytes"]
    assert p.buffer("L0A").alignment == 512 and p.buffer("L1").alignment == 32
    assert p.buffer("L0C").roles == ("accumulators",)
    assert p.layout.activation == "NC1HWC0" and p.layout.channel_block == 32
    assert p.layout.weight == "FRACTAL_Z"
    assert p.vector.units == 2
    assert p.l2 is not None and p.l2.bytes == 192 * KiB**2
    assert p.offchip.bandwidth == 1.6e12 and "estimate" in p.offchip.sources["bandwidth"]
    # the derived peak (24 x 1.8 GHz x 8192 x 2) and the specification's rating, both noted
    assert p.int8_tops == pytest.approx(p.modelled_int8_tops(), rel=1e-4)
    assert p.int8_tops == pytest.approx(707.8) and "560" in _src(p, "int8_tops")
    assert p.rated_int8_tops == 256 and "specification" in _src(p, "rated_int8_tops")


def test_ascend310p_figures() -> None:
    p = builtin_profile("ascend310p")
    assert (p.cores, p.clock_hz) == (8, 1.06e9)
    sizes = {b.name: b.bytes for b in p.buffers}
    assert sizes == {"L0A": 64 * KiB, "L0B": 64 * KiB, "L0C": 256 * KiB, "UB": 256 * KiB,
                     "L1": 1024 * KiB}
    assert p.l2 is not None and p.l2.bytes == 16 * KiB**2
    assert p.int8_tops == 140 and p.offchip.bandwidth == 204e9
    assert p.modelled_int8_tops() == pytest.approx(140, rel=0.01)


def test_mlu370_figures() -> None:
    p = builtin_profile("mlu370x8")
    assert p.int8_tops == 256 and p.rated_int8_tops == 128
    assert "INT16" in _src(p, "rated_int8_tops")
    assert p.clock_hz == 1.3e9 and p.cores == 32
    nram, wram, sram = p.buffer("NRAM"), p.buffer("WRAM"), p.buffer("SRAM")
    assert nram.bytes == 640 * KiB and "768" in nram.sources["bytes"]
    assert wram.bytes == 1024 * KiB and wram.roles == ("weights",)
    assert sram.bytes == 3968 * KiB and sram.shared_by == 4 and sram.scope == "cluster"
    assert nram.alignment == 128 and wram.alignment == 64
    assert p.offchip.bandwidth == 614.4e9 and p.offchip.bytes == 48 * KiB**3
    assert p.vector.width_bytes == 128 and p.layout.channel_block == 64
    assert p.matrix.block["i8"][1:] == (64, 64)
    assert p.modelled_int8_tops() == pytest.approx(256, rel=0.01)
    assert "derived" in p.matrix.sources["macs_per_cycle.i8"]


def test_thinker2_is_marked_assumed() -> None:
    p = builtin_profile("thinker2")
    assert p.int8_tops == 64 and "specification" in _src(p, "int8_tops")
    assert p.modelled_int8_tops() == pytest.approx(64, rel=0.05)
    for b in p.buffers:
        assert b.sources["bytes"].startswith("assumed"), b.name
    assert _src(p, "clock_hz").startswith("assumed")
    assert p.offchip.bandwidth < 100e9  # LPDDR4X class: tens of GB/s


def test_host_measured_ceilings_and_detection(tmp_path) -> None:  # noqa: ANN001
    p = profile_from_data(host_mod.DATA)  # the assumed Zen 4 core
    assert p.int8_tops == 0.457 and "measured" in _src(p, "int8_tops")
    assert p.modelled_int8_tops() == pytest.approx(0.457, rel=0.01)
    f32_gflops = 2 * p.matrix.macs_per_cycle["f32"] * p.clock_hz / 1e9
    assert f32_gflops == pytest.approx(116, rel=0.02)
    assert p.buffer("L1D").bytes == 32 * KiB and p.buffer("L2").bytes == 1024 * KiB
    assert p.activation_dtype == "u8"
    # detection reads sysfs: a fake cache tree replaces the sizes and says so
    for i, (lv, ty, size) in enumerate([(1, "Data", "48K"), (2, "Unified", "2048K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{lv}\n")
        (d / "type").write_text(f"{ty}\n")
        (d / "size").write_text(f"{size}\n")
    q = profile_from_data(host_mod.detected("avx2", tmp_path))
    assert q.buffer("L1D").bytes == 48 * KiB and q.buffer("L2").bytes == 2048 * KiB
    assert q.buffer("L1D").sources["bytes"].startswith("detected")
    assert q.matrix.macs_per_cycle["i8"] == 32 and q.vector.width_bytes == 32
    v = profile_from_data(host_mod.detected("avx512vnni", tmp_path))
    assert v.matrix.macs_per_cycle["i8"] == 64 and v.int8_tops == 0.457


def test_every_figure_has_a_source() -> None:
    for p in all_builtin():
        data = profile_to_data(p)

        def walk(x, path: str, p=p) -> None:  # noqa: ANN001
            if isinstance(x, dict) and "value" in x:
                assert x.get("source"), f"{p.name}: {path} has no source"
            elif isinstance(x, dict):
                for k, v in x.items():
                    if k not in ("name", "description", "roles", "level", "scope"):
                        walk(v, f"{path}.{k}")
            elif isinstance(x, list) and path.endswith("buffers"):
                for b in x:
                    walk(b, f"{path}[{b['name']}]")
            else:
                raise AssertionError(f"{p.name}: {path} = {x!r} is a bare figure")

        walk(data, "")


def test_round_trip_through_json(tmp_path) -> None:  # noqa: ANN001
    for name in BUILTIN_TARGETS:
        p = builtin_profile(name)
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(profile_to_data(p)))
        q = load_target(str(f))
        assert profile_to_data(q) == profile_to_data(p)


def test_a_transfer_setup_is_optional_sourced_and_never_negative() -> None:
    data = profile_to_data(builtin_profile("ascend910b"))
    setup = data["offchip"]["setup_bytes"]
    assert setup["value"] > 0 and "16 KB" in setup["source"]
    del data["offchip"]["setup_bytes"]
    assert profile_from_data(data, default_source="user file").offchip.setup_bytes == 0.0
    data["offchip"]["setup_bytes"] = -5.0
    with pytest.raises(ValueError, match="setup_bytes"):
        profile_from_data(data, default_source="user file")
