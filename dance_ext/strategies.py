"""DSA strategy names (ALGORITHMS.md §2): plain strings and their parser, kept apart from
the sampling in augment_params.py so that presets, protocols and the CLI import no torch."""
from __future__ import annotations

TOKENS = ("color", "crop", "cutout", "flip", "scale", "rotate")
IDC_ALWAYS = ("flip", "color", "cutout")
CONVENTIONS = ("vico", "idc")

DM_STRATEGY = "color_crop_cutout_flip_scale_rotate"
DANCE_STRATEGY = "color_crop_cutout"
DANCE_EVAL_STRATEGY = "color_crop_flip_scale_rotate"
PRETRAIN_STRATEGY = "color_crop"


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """Split a strategy such as ``'color_crop_cutout'`` into validated tokens."""
    if not isinstance(strategy, str):
        raise TypeError(f"strategy: expected a string like 'color_crop_cutout', got {type(strategy).__name__}")
    if strategy in ("", "none"):
        return ()
    tokens = tuple(strategy.split("_"))
    unknown = [t for t in tokens if t not in TOKENS]
    if unknown:
        raise ValueError(f"strategy: unknown op(s) {unknown} in {strategy!r}; expected tokens from {TOKENS}")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"strategy: repeated op in {strategy!r}")
    return tokens
