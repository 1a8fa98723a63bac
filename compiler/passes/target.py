"""The ``target`` option of the passes that work for an accelerator (layout, fold-layout, tile):
a profile, written in pipeline text as its name (``tile{target=ascend910b}``)."""

from __future__ import annotations

from typing import Any

from compiler.passes.manager import PassError, option
from targets.profiles import Profile, load_target


def accelerator_profile(name: str) -> Profile:
    """The accelerator profile ``name`` names (a built-in target or a profile file)."""
    if name == "host":
        raise PassError("target 'host' has no buffers to lay out or tile for; name an "
                        "accelerator profile (ascend910b, mlu370x8, ...) or a profile file")
    return load_target(name)


def target_option() -> Any:
    return option(None, "the accelerator profile to work for (a built-in name or a file)",
                  parse=accelerator_profile, show=lambda p: p.name)


def require_target(pass_name: str, profile: Profile | None) -> Profile:
    if profile is None:
        raise PassError(f"pass {pass_name!r} works for a target: write it as "
                        f"{pass_name}{{target=ascend910b}}, or compile with --target (an "
                        "accelerator profile) or --target-file")
    return profile
