"""`qnnc completion`: the generated bash script, sourced in a real bash, completes commands,
options and choices from the parser itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.cli import build_parser
from compiler.cli_completion import bash_script, zsh_script
from compiler.examples import EXAMPLES
from targets.profiles import BUILTIN_TARGETS

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _complete(script: Path, *words: str) -> list[str]:
    """What the completion function offers for the command line ``words`` (the last word is
    the one being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    probe = (f"source '{script}'\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
             "COMPREPLY=(); _qnnc; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return [w for w in out.splitlines() if w]


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("completion") / "qnnc.bash"
    p.write_text(bash_script(build_parser()))
    subprocess.run(["bash", "-n", str(p)], check=True)  # the script parses
    return p


def test_commands_and_subcommands(script: Path) -> None:
    assert _complete(script, "qnnc", "co") == ["compile", "completion"]
    assert _complete(script, "qnnc", "golden", "r") == ["record"]
    assert _complete(script, "qnnc", "cache", "") == ["info", "clear"]


def test_options_of_the_command_being_typed(script: Path) -> None:
    got = _complete(script, "qnnc", "compile", "m.onnx", "--pre")
    assert got == ["--precision"]
    assert "--allow-nonfinite" in _complete(script, "qnnc", "run", "m.onnx", "--")
    assert "--allow-nonfinite" not in _complete(script, "qnnc", "compile", "m.onnx", "--")


def test_choices_of_option_values(script: Path) -> None:
    targets = _complete(script, "qnnc", "compile", "m.onnx", "--target", "")
    assert set(BUILTIN_TARGETS) <= set(targets) and "host" in targets
    assert _complete(script, "qnnc", "compile", "m.onnx", "--precision", "i") == ["int8"]
    assert sorted(_complete(script, "qnnc", "example", "")) == sorted(EXAMPLES)


def test_free_values_fall_back_to_file_names(script: Path) -> None:
    # nothing offered: `complete -o default` lets bash complete file names
    assert _complete(script, "qnnc", "compile", "m.onnx", "-o", "bu") == []
    assert _complete(script, "qnnc", "run", "") == []


def test_zsh_script_wraps_the_bash_one() -> None:
    z = zsh_script(build_parser())
    assert z.startswith("#compdef qnnc\n") and "bashcompinit" in z
    assert bash_script(build_parser()) in z
