"""Sampling of differentiable siamese augmentation (DSA) parameters.

Kernels never draw random numbers: this module turns a strategy string and a
``torch.Generator`` into a float32 parameter tensor of shape (P, 13), one row per
parameter set, in the column layout of docs/ARCHITECTURE.md, "The op parameter contract" (``PARAM_COLUMNS``). The op
``dance_ext.ops.siamese_augment`` (and its oracle in ``reference.py``) applies them.

Two conventions (docs/ALGORITHMS.md §2):

* ``"vico"`` (DM, VICO-UoE code): one op is chosen uniformly among the strategy's
  tokens and only that op is applied.
* ``"idc"`` (DANCE, IDC code): ``flip``, ``color`` and ``cutout`` are always applied
  when present; one op of the rest (``crop``, ``scale``, ``rotate``) is chosen.

``one_op_per_call=True`` chooses the op once for all rows (the non-siamese
evaluation mode: one op per mini-batch, per-sample parameters); otherwise every row
chooses its own op (the siamese mode: one row per class per iteration).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# the names are plain strings, importable without torch (presets, protocols, the CLI)
from .strategies import (CONVENTIONS, DANCE_EVAL_STRATEGY, DANCE_STRATEGY, DM_STRATEGY, IDC_ALWAYS,  # noqa: F401
                         PRETRAIN_STRATEGY, TOKENS, parse_strategy)

PARAM_COLUMNS = (
    "flip", "scale_w", "scale_h", "angle", "shift_h", "shift_w",
    "brightness", "saturation", "contrast",
    "cutout_h", "cutout_w", "cutout_size_h", "cutout_size_w",
)
NUM_PARAMS = len(PARAM_COLUMNS)
(FLIP, SCALE_W, SCALE_H, ANGLE, SHIFT_H, SHIFT_W, BRIGHTNESS, SATURATION, CONTRAST,
 CUTOUT_H, CUTOUT_W, CUTOUT_SIZE_H, CUTOUT_SIZE_W) = range(NUM_PARAMS)
IDENTITY_ROW = (0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class DSAConfig:
    """Ranges of the DSA ops (``ParamDiffAug`` of the official code)."""
    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


def identity_params(n: int, device=None) -> torch.Tensor:
    """(n, 13) float32 rows that leave an image unchanged."""
    return torch.tensor(IDENTITY_ROW, dtype=torch.float32, device=device).repeat(n, 1)


def crop_shift(size: int, config: DSAConfig = DSAConfig()) -> int:
    return int(size * config.ratio_crop_pad + 0.5)


def cutout_size(size: int, config: DSAConfig = DSAConfig()) -> int:
    return int(size * config.ratio_cutout + 0.5)


def _fill_op(rows: torch.Tensor, mask: torch.Tensor, op: str, image_size, config, gen) -> None:
    """Draw the parameters of ``op`` for every row and write them where ``mask`` holds."""
    n, dev = rows.shape[0], rows.device
    height, width = image_size

    def rand() -> torch.Tensor:
        return torch.rand(n, generator=gen, device=dev)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return rand() * (hi - lo) + lo

    def integers(lo: int, hi_inclusive: int) -> torch.Tensor:
        return torch.randint(lo, hi_inclusive + 1, (n,), generator=gen, device=dev).float()

    columns: dict[int, torch.Tensor] = {}
    if op == "flip":
        columns[FLIP] = (rand() < config.prob_flip).float()
    elif op == "scale":
        r = config.ratio_scale
        columns[SCALE_W] = uniform(1.0 / r, r)
        columns[SCALE_H] = uniform(1.0 / r, r)
    elif op == "rotate":
        columns[ANGLE] = (rand() - 0.5) * 2 * config.ratio_rotate / 180 * math.pi
    elif op == "crop":
        sh, sw = crop_shift(height, config), crop_shift(width, config)
        columns[SHIFT_H] = integers(-sh, sh)
        columns[SHIFT_W] = integers(-sw, sw)
    elif op == "color":
        columns[BRIGHTNESS] = (rand() - 0.5) * config.brightness
        columns[SATURATION] = rand() * config.saturation
        columns[CONTRAST] = rand() + config.contrast
    elif op == "cutout":
        ch, cw = cutout_size(height, config), cutout_size(width, config)
        # centre in [0, size + (1 - side % 2)), as in the official code
        columns[CUTOUT_H] = integers(0, height - ch % 2)
        columns[CUTOUT_W] = integers(0, width - cw % 2)
        columns[CUTOUT_SIZE_H] = torch.full((n,), float(ch), device=dev)
        columns[CUTOUT_SIZE_W] = torch.full((n,), float(cw), device=dev)
    else:  # parse_strategy rejects anything else
        raise AssertionError(op)
    for col, values in columns.items():
        rows[:, col] = torch.where(mask, values, rows[:, col])


def sample_params(n: int, strategy: str, image_size, convention: str = "vico", *,
                  one_op_per_call: bool = False, generator: torch.Generator | None = None,
                  config: DSAConfig = DSAConfig(), device=None) -> torch.Tensor:
    """Draw ``n`` parameter rows of ``strategy`` for images of ``image_size`` (H, W).

    The draws happen on the device of ``generator`` (CPU when None), so a CUDA
    generator keeps the condensation loop free of host-device transfers; the result
    is then moved to ``device`` (default: the generator's device).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: expected one of {CONVENTIONS}, got {convention!r}")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected a non-negative int, got {n!r}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size: expected positive (H, W), got {image_size!r}")
    tokens = parse_strategy(strategy)
    draw_device = generator.device if generator is not None else torch.device("cpu")
    rows = identity_params(n, device=draw_device)
    if device is None:
        device = draw_device
    if n == 0 or not tokens:
        return rows.to(device)
    if convention == "vico":
        always, pool = (), tokens
    else:
        always = tuple(t for t in tokens if t in IDC_ALWAYS)
        pool = tuple(t for t in tokens if t not in IDC_ALWAYS)
    # order of application is fixed by the op; drawing order only fixes the random stream
    everywhere = torch.ones(n, dtype=torch.bool, device=draw_device)
    for op in always:
        _fill_op(rows, everywhere, op, (height, width), config, generator)
    if pool:
        if one_op_per_call:
            choice = torch.randint(len(pool), (1,), generator=generator, device=draw_device).expand(n)
        else:
            choice = torch.randint(len(pool), (n,), generator=generator, device=draw_device)
        for k, op in enumerate(pool):
            _fill_op(rows, choice == k, op, (height, width), config, generator)
    return rows.to(device, non_blocking=True)


def expand_params(params: torch.Tensor, index: torch.Tensor | None, n: int) -> torch.Tensor:
    """Rows of ``params`` per sample: ``params[index]``, or broadcast when P == 1."""
    if index is not None:
        return params.index_select(0, index)
    if params.shape[0] == n:
        return params
    return params.expand(n, -1)
