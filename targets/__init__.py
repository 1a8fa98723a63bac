"""Targets: per-chip profiles and code generators (host CPU and accelerators)."""
