"""User target files are validated with errors that name the field."""

from __future__ import annotations

import json

import pytest

from targets.profiles import ProfileError, load_target, profile_from_data
from tests.targets.fakes import tiny_data, two_level_data


def _err(data: dict) -> str:
    with pytest.raises(ProfileError) as e:
        profile_from_data(data, default_source="test")
    return str(e.value)


def test_fakes_are_valid() -> None:
    assert profile_from_data(tiny_data(), default_source="test").levels == 1
    assert profile_from_data(two_level_data(), default_source="test").levels == 2


def test_missing_field() -> None:
    d = tiny_data()
    del d["clock_hz"]
    assert "clock_hz: missing field" in _err(d)
    d = tiny_data()
    del d["buffers"][0]["bytes"]
    assert "buffers[BUF].bytes: missing field" in _err(d)
    d = tiny_data()
    del d["matrix"]
    assert "matrix: missing section" in _err(d)


@pytest.mark.parametrize("value", [0, -4096])
def test_zero_or_negative_buffer_size(value: int) -> None:
    d = tiny_data()
    d["buffers"][0]["bytes"] = value
    assert f"buffers[BUF].bytes: must be > 0, got {value}" in _err(d)


def test_zero_bandwidth_and_cores() -> None:
    d = tiny_data()
    d["offchip"]["bandwidth"] = 0
    assert "offchip.bandwidth: must be > 0" in _err(d)
    assert "cores: must be > 0" in _err(tiny_data(cores=0))
    d = tiny_data()
    d["matrix"]["macs_per_cycle"]["i8"] = -1
    assert "matrix.macs_per_cycle.i8: must be > 0" in _err(d)


def test_unknown_role_and_unknown_field() -> None:
    d = tiny_data()
    d["buffers"][0]["roles"] = ["inputs", "weights", "accumulators", "scratch"]
    assert "buffers[BUF].roles: unknown role 'scratch'" in _err(d)
    d = tiny_data()
    d["buffers"][0]["sise"] = 3
    assert "buffers[BUF]: unknown field(s) sise" in _err(d)


@pytest.mark.parametrize("align", [0, 3, 48])
def test_alignment_not_power_of_two(align: int) -> None:
    d = tiny_data()
    d["buffers"][0]["alignment"] = align
    assert f"buffers[BUF].alignment: must be a power of two, got {align}" in _err(d)


def test_wrong_types_and_values() -> None:
    assert "cores: expected an integer, got str" in _err(tiny_data(cores="4"))
    assert "activation_dtype: must be one of u8, i8" in _err(tiny_data(activation_dtype="f8"))
    d = tiny_data()
    d["matrix"]["block"]["i8"] = [1, 4]
    assert "matrix.block.i8: expected a list of 3 integers" in _err(d)


def test_accumulator_buffer_smaller_than_one_tile() -> None:
    d = two_level_data()
    acc = d["buffers"][2]
    acc["bytes"] = 8  # one 1x4x4 INT8 block has 1x4 int32 accumulators: 16 bytes
    assert "buffers[ACC].bytes: 8 bytes per core cannot hold one tile of the minimum" in _err(d)


def test_structure_errors() -> None:
    d = two_level_data()
    d["buffers"][3]["level"] = 3
    assert "levels must run 1, 2, ... without gaps" in _err(d)
    d = two_level_data()
    d["buffers"][0]["roles"] = ["weights"]
    assert "level 1 has two buffers holding weights" in _err(d)
    d = tiny_data()
    d["buffers"][0]["roles"] = ["inputs", "weights"]
    assert "no level-1 buffer holds accumulators" in _err(d)


def test_builtin_needs_sources() -> None:
    with pytest.raises(ProfileError, match="macs_per_cycle.i8: has no source"):
        profile_from_data(tiny_data())  # no default source: every figure needs one


def test_toml_and_json_files(tmp_path) -> None:  # noqa: ANN001
    toml = tmp_path / "chip.toml"
    toml.write_text('''
name = "chip"
int8_tops = {value = 1.0, source = "datasheet p. 3"}
clock_hz = 1e9
cores = 1
activation_dtype = "i8"
[matrix]
macs_per_cycle = {i8 = 512}
block = {i8 = [1, 16, 32]}
[vector]
width_bytes = 32
[layout]
activation = "NHWC"
weight = "OHWI"
channel_block = 16
[offchip]
name = "DDR"
bytes = 1073741824
bandwidth = 1e10
[[buffers]]
name = "SPM"
roles = ["inputs", "weights", "outputs", "accumulators", "vector"]
level = 1
bytes = 262144
alignment = 64
double_buffered = true
''')
    p = load_target(str(toml))
    assert p.name == "chip" and p.buffer("SPM").double_buffered
    assert p.sources["int8_tops"] == "datasheet p. 3"
    assert p.sources["clock_hz"] == "user file chip.toml"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tiny_data(clock_hz=-1)))
    with pytest.raises(ProfileError, match="clock_hz: must be > 0"):
        load_target(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_target(str(broken))
    with pytest.raises(ProfileError, match="unknown target 'nochip'"):
        load_target("nochip")


def test_what_targets_json_prints_is_a_target_file(tmp_path, capsys) -> None:  # noqa: ANN001
    """`qnnc targets NAME --json > chip.json` writes a file --target-file takes (a list of
    one profile); a list of several is refused with the command that writes one."""
    from compiler.cli import main

    assert main(["targets", "thinker2", "--json"]) == 0
    one = tmp_path / "t2.json"
    one.write_text(capsys.readouterr().out)
    assert load_target(str(one)).name == "thinker2"
    assert main(["targets", "thinker2", "mlu370x8", "--json"]) == 0
    two = tmp_path / "two.json"
    two.write_text(capsys.readouterr().out)
    with pytest.raises(ProfileError, match=r"holds 2 profiles \(thinker2, mlu370x8\).*--json"):
        load_target(str(two))


def test_the_old_name_of_the_rated_figure_still_loads() -> None:
    data = tiny_data()
    data["brief_int8_tops"] = {"value": 99.0, "source": "an older target file"}
    assert profile_from_data(data, default_source="test").rated_int8_tops == 99.0
