"""What a model spec is, without building it (no torch: tables and figures read specs too).

A spec is the built-in U-Net's dict, `{library, name, kwargs}` (MONAI, smp) or `{module,
kwargs}` (a user's file); `registry` builds them.
"""

from __future__ import annotations

# What the tables say of a network that is not the built-in U-Net, for the U-Net's factors.
OTHER_FACTORS = {"norm": "n/a", "skip": "n/a", "init": "own"}


def model_kind(spec: dict) -> str:
    """"unet" (the built-in U-Net), "library" (MONAI, smp) or "module" (a user's file)."""
    if "library" in spec:
        return "library"
    if "module" in spec:
        return "module"
    return "unet"


def arch_factors(spec: dict) -> dict:
    """norm, skip and init of a spec for the tables: the built-in U-Net's own values; for other
    networks "n/a", "n/a" and "own" (their own initialisation)."""
    if model_kind(spec) == "unet":
        return {key: spec[key] for key in ("norm", "skip", "init")}
    return dict(OTHER_FACTORS)


def describe(spec: dict) -> str:
    """A few words naming the network of a spec."""
    if model_kind(spec) == "library":
        return f"{spec['library']} {spec['name']}"
    if model_kind(spec) == "module":
        return spec["module"]
    return "U-Net"
