"""The host CPU target: generated C built into a Python extension and a standalone bundle."""
