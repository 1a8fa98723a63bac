"""The shared C code generator: names, per-op emitters, the arena planner, model.c writer."""

from targets.c.emitter import EMITTERS, CodegenError, Renderer, emits
from targets.c.model import CSources, generate

__all__ = ["EMITTERS", "CSources", "CodegenError", "Renderer", "emits", "generate"]
