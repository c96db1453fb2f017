"""Pure-PyTorch oracles of the custom ops.

These follow the official code's op-by-op formulas (docs/ALGORITHMS.md §2.3) with plain
torch operations, so autograd gives their gradients. They are the ground truth of the
tests, the baseline of the benchmarks, and the fallback when the compiled extension
lacks an op.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment_params import (ANGLE, BRIGHTNESS, CONTRAST, CUTOUT_H, CUTOUT_SIZE_H, CUTOUT_SIZE_W, CUTOUT_W,
                      FLIP, SATURATION, SCALE_H, SCALE_W, SHIFT_H, SHIFT_W, expand_params)


def _col(p: torch.Tensor, col: int, dtype) -> torch.Tensor:
    return p[:, col].to(dtype).view(-1, 1, 1, 1)


_ROUND_LIMIT = 1e15


def _rounded(v: torch.Tensor) -> torch.Tensor:
    """Half to even, clamped to ±1e15 with NaN at the low end: the kernels' round_even
    (csrc/kernels/augment_math.h), so huge or NaN shifts and cut-outs never overflow int64."""
    return v.double().round().nan_to_num(-_ROUND_LIMIT).clamp(-_ROUND_LIMIT, _ROUND_LIMIT).long()


def flip(x, p):
    return torch.where(_col(p, FLIP, x.dtype) > 0.5, x.flip(3), x)


def brightness(x, p):
    return x + _col(p, BRIGHTNESS, x.dtype)


def saturation(x, p):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _col(p, SATURATION, x.dtype) + mean


def contrast(x, p):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _col(p, CONTRAST, x.dtype) + mean


def scale_rotate(x, p):
    """affine_grid + grid_sample (bilinear, zeros, align_corners=False) with θ = S·R."""
    sw, sh = p[:, SCALE_W].to(x.dtype), p[:, SCALE_H].to(x.dtype)
    cos, sin = torch.cos(p[:, ANGLE].to(x.dtype)), torch.sin(p[:, ANGLE].to(x.dtype))
    zero = torch.zeros_like(sw)
    theta = torch.stack([
        torch.stack([sw * cos, -sw * sin, zero], dim=1),
        torch.stack([sh * sin, sh * cos, zero], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # a non-finite coordinate reads nothing, as in the kernels (grid_sample would give NaN)
    grid = grid.nan_to_num(-4.0, 4.0, -4.0).clamp(-4.0, 4.0)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # an identity θ is exact by definition; grid_sample's float grid would add ~1e-6 noise
    identity = ((sw == 1) & (sh == 1) & (sin == 0)).view(-1, 1, 1, 1)
    return torch.where(identity, x, warped)


def crop(x, p):
    """y[i, j] = x[i + shift_h, j + shift_w], zero outside."""
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h) + _rounded(p[:, SHIFT_H]).view(n, 1)
    cols = torch.arange(w, device=x.device).view(1, w) + _rounded(p[:, SHIFT_W]).view(n, 1)
    valid = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, 1, w)
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    gathered = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w))
    gathered = gathered.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
    return gathered * valid.to(x.dtype)


def cutout(x, p):
    n, _, h, w = x.shape

    def keep(centre, size, length):
        start = _rounded(centre) - torch.div(_rounded(size), 2, rounding_mode="floor")
        end = start + _rounded(size)
        pos = torch.arange(length, device=x.device).view(1, length)
        return (pos < start.view(n, 1)) | (pos >= end.view(n, 1))

    keep_rows = keep(p[:, CUTOUT_H], p[:, CUTOUT_SIZE_H], h).view(n, 1, h, 1)
    keep_cols = keep(p[:, CUTOUT_W], p[:, CUTOUT_SIZE_W], w).view(n, 1, 1, w)
    return x * (keep_rows | keep_cols).to(x.dtype)


def siamese_augment(x: torch.Tensor, params: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """Apply one parameter row per sample in the fused order of docs/ARCHITECTURE.md, "The op parameter contract":
    flip → brightness → saturation → contrast → scale/rotate → crop → cutout. A sample whose colour
    map is not finite is NaN at every pixel (``_poison``)."""
    p = expand_params(params, index, x.shape[0])
    if x.numel() == 0:  # grid_sample refuses empty images; there is nothing to move
        return x.clone()
    poison = _poison(x, p)
    x = flip(x, p)
    x = brightness(x, p)
    x = saturation(x, p)
    x = contrast(x, p)
    x = scale_rotate(x, p)
    x = crop(x, p)
    return cutout(x, p) + poison


def _poison(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1, 1): NaN for samples with a NaN/inf colour parameter or pixel, else 0. The kernels
    fold colour into A·x + B·mean + D (docs/ARCHITECTURE.md, "The op parameter contract"), so one
    non-finite coefficient makes their whole sample NaN, cut-out and padded pixels too."""
    colour = p[:, [BRIGHTNESS, SATURATION, CONTRAST]].to(x.dtype)
    finite = torch.isfinite(colour).all(1) & torch.isfinite(x).flatten(1).all(1)
    return torch.where(finite, 0.0, float("nan")).to(x.dtype).view(-1, 1, 1, 1)


def class_mean_mmd(f_real: torch.Tensor, f_syn: torch.Tensor, real_labels: torch.Tensor | None = None,
                   syn_labels: torch.Tensor | None = None, num_classes: int | None = None,
                   reduction: str = "sum") -> torch.Tensor:
    """Σ_c ‖mean(f_real of c) − mean(f_syn of c)‖²; the real side carries no gradient."""
    f_real = f_real.detach()
    if f_real.dim() == 3:
        mu_real, mu_syn = f_real.mean(dim=1), f_syn.mean(dim=1)
    else:
        mu_real = _segment_mean(f_real, real_labels, num_classes)
        mu_syn = _segment_mean(f_syn, syn_labels, num_classes)
    per_class = (mu_real - mu_syn).pow(2).sum(dim=1)
    if reduction == "none":
        return per_class
    if reduction == "mean":
        return per_class.mean()
    return per_class.sum()


def _segment_mean(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    sums = features.new_zeros(num_classes, features.shape[1]).index_add(0, labels, features)
    counts = torch.bincount(labels, minlength=num_classes).to(features.dtype)
    return sums / counts.unsqueeze(1)
