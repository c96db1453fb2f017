"""The oracles themselves: each DSA op of reference.py against a direct, loop-level
implementation of its formula (docs/ALGORITHMS.md §2.3), gradients by gradcheck, and the
parameter sampling of both conventions (op frequencies and ranges, §2.1–2.4)."""
import math

import pytest
import torch

from dance_ext import augment_params as augment, reference
from dance_ext.augment_params import (ANGLE, BRIGHTNESS, CONTRAST, CUTOUT_H, CUTOUT_SIZE_H, FLIP,
                               IDENTITY_ROW, SATURATION, SCALE_H, SCALE_W, SHIFT_H, SHIFT_W)

pytestmark = pytest.mark.usefixtures("single_thread")


def row(**values) -> torch.Tensor:
    r = torch.tensor(IDENTITY_ROW, dtype=torch.float64)
    for name, v in values.items():
        r[augment.PARAM_COLUMNS.index(name)] = v
    return r.view(1, -1)


def images(n=2, c=3, h=6, w=7, seed=0):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def same(a, b) -> bool:
    # identity colour rows still round: (x − m)·1 + m
    return torch.allclose(a, b, rtol=0, atol=1e-12)


def bilinear_zero_pad(img, y, x):
    """Bilinear sample of img (C, H, W) at pixel coordinates (y, x), zero outside."""
    c, h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    out = torch.zeros(c, dtype=img.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            weight = (1 - abs(y - yy)) * (1 - abs(x - xx))
            if 0 <= yy < h and 0 <= xx < w:
                out += weight * img[:, yy, xx]
    return out


def affine_by_formula(img, theta):
    """grid_sample(affine_grid(θ)) with align_corners=False, written out pixel by pixel."""
    c, h, w = img.shape
    out = torch.zeros_like(img)
    for i in range(h):
        for j in range(w):
            u, v = (2 * j + 1) / w - 1, (2 * i + 1) / h - 1
            su = theta[0][0] * u + theta[0][1] * v
            sv = theta[1][0] * u + theta[1][1] * v
            out[:, i, j] = bilinear_zero_pad(img, ((sv + 1) * h - 1) / 2, ((su + 1) * w - 1) / 2)
    return out


@pytest.mark.parametrize("sx,sy", [(1.2, 0.9), (0.85, 1.1)])
def test_scale_matches_formula(sx, sy):
    x = images()
    y = reference.siamese_augment(x, row(scale_w=sx, scale_h=sy))
    for k in range(len(x)):
        assert torch.allclose(y[k], affine_by_formula(x[k], [[sx, 0], [0, sy]]), atol=1e-10)


@pytest.mark.parametrize("angle", [0.2, -0.25])
def test_rotate_matches_formula(angle):
    x = images()
    y = reference.siamese_augment(x, row(angle=angle))
    theta = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    for k in range(len(x)):
        assert torch.allclose(y[k], affine_by_formula(x[k], theta), atol=1e-10)


def test_flip_is_a_width_flip():
    x = images()
    assert same(reference.siamese_augment(x, row(flip=1)), x.flip(3))
    assert same(reference.siamese_augment(x, row(flip=0)), x)


def test_colour_matches_formulas():
    x = images()
    b, s, k = 0.3, 1.7, 0.6
    y = reference.siamese_augment(x, row(brightness=b, saturation=s, contrast=k))
    z = x + b
    pixel_mean = z.mean(dim=1, keepdim=True)
    z = (z - pixel_mean) * s + pixel_mean
    image_mean = z.mean(dim=(1, 2, 3), keepdim=True)
    z = (z - image_mean) * k + image_mean
    assert torch.allclose(y, z, atol=1e-12)
    gray = images(c=1)  # saturation is a no-op on one channel
    assert torch.allclose(reference.siamese_augment(gray, row(saturation=1.9)), gray, atol=1e-12)


@pytest.mark.parametrize("th,tw", [(2, -3), (-1, 0), (7, 1)])
def test_crop_translation_matches_formula(th, tw):
    x = images()
    y = reference.siamese_augment(x, row(shift_h=th, shift_w=tw))
    _, _, h, w = x.shape
    for i in range(h):
        for j in range(w):
            inside = 0 <= i + th < h and 0 <= j + tw < w
            expected = x[:, :, i + th, j + tw] if inside else torch.zeros_like(x[:, :, 0, 0])
            assert same(y[:, :, i, j], expected)


@pytest.mark.parametrize("ch,cw,size", [(3, 3, 4), (0, 6, 3), (6, 7, 5)])
def test_cutout_matches_formula(ch, cw, size):
    x = images()
    y = reference.siamese_augment(x, row(cutout_h=ch, cutout_w=cw, cutout_size_h=size, cutout_size_w=size))
    _, _, h, w = x.shape
    for i in range(h):
        for j in range(w):
            zeroed = ch - size // 2 <= i < ch - size // 2 + size and cw - size // 2 <= j < cw - size // 2 + size
            assert same(y[:, :, i, j], torch.zeros_like(y[:, :, i, j]) if zeroed else x[:, :, i, j])


def test_per_sample_rows_and_index():
    x = images(n=3)
    rows = torch.cat([row(flip=1), row(brightness=0.5), row(shift_h=1)])
    y = reference.siamese_augment(x, rows)
    for k in range(3):
        assert torch.equal(y[k:k + 1], reference.siamese_augment(x[k:k + 1], rows[k:k + 1]))
    index = torch.tensor([2, 2, 0])
    assert torch.equal(reference.siamese_augment(x, rows, index), reference.siamese_augment(x, rows[index]))


def test_gradcheck_every_op():
    x = images(n=2, c=3, h=5, w=6).requires_grad_(True)
    rows = torch.cat([row(flip=1, brightness=0.2, saturation=1.4, contrast=0.7, scale_w=1.1, scale_h=0.9,
                          cutout_h=2, cutout_w=2, cutout_size_h=2, cutout_size_w=3),
                      row(angle=0.3, shift_h=-1, shift_w=2)])
    assert torch.autograd.gradcheck(lambda t: reference.siamese_augment(t, rows), (x,))


def test_class_mean_mmd_formula_and_gradcheck():
    gen = torch.Generator().manual_seed(0)
    f_real = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64)
    f_syn = torch.randn(3, 2, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    loss = reference.class_mean_mmd(f_real, f_syn)
    expected = sum(((f_real[c].mean(0) - f_syn[c].mean(0)) ** 2).sum() for c in range(3))
    assert torch.allclose(loss, expected)
    assert torch.autograd.gradcheck(lambda s: reference.class_mean_mmd(f_real, s), (f_syn,))
    labels_r, labels_s = torch.arange(3).repeat_interleave(5), torch.arange(3).repeat_interleave(2)
    ragged = reference.class_mean_mmd(f_real.reshape(15, 4), f_syn.reshape(6, 4), labels_r, labels_s, 3)
    assert torch.allclose(ragged, loss)


# ---- sampling --------------------------------------------------------------------------------
N = 6000


def active_ops(rows: torch.Tensor) -> list[set]:
    ident = torch.tensor(IDENTITY_ROW)
    groups = {"flip": [FLIP], "scale": [SCALE_W, SCALE_H], "rotate": [ANGLE], "crop": [SHIFT_H, SHIFT_W],
              "color": [BRIGHTNESS, SATURATION, CONTRAST], "cutout": [CUTOUT_SIZE_H]}
    return [{op for op, cols in groups.items() if any(r[c] != ident[c] for c in cols)} for r in rows]


def test_vico_picks_one_op_uniformly_with_documented_ranges():
    rows = augment.sample_params(N, augment.DM_STRATEGY, (32, 32), "vico", generator=torch.Generator().manual_seed(0))
    ops = active_ops(rows)
    assert all(len(o) <= 1 for o in ops)
    counts = {op: sum(op in o for o in ops) for op in augment.TOKENS}
    # flip and crop can draw an identity value (p = 1/2, 1/81), so their rows look inactive at times
    for op in ("color", "cutout", "scale", "rotate"):
        assert abs(counts[op] / N - 1 / 6) < 0.02, counts
    assert abs(counts["flip"] / N - 1 / 12) < 0.015, counts
    r = rows
    scaled = r[:, SCALE_W] != 1
    assert r[scaled, SCALE_W].min() >= 1 / 1.2 and r[scaled, SCALE_W].max() < 1.2
    rotated = r[:, ANGLE] != 0
    assert r[rotated, ANGLE].abs().max() <= 15 * math.pi / 180
    assert set(r[:, SHIFT_H].unique().tolist()) <= set(range(-4, 5))  # int(32·0.125 + 0.5) = 4
    coloured = r[:, SATURATION] != 1
    assert r[coloured, BRIGHTNESS].min() >= -0.5 and r[coloured, BRIGHTNESS].max() < 0.5
    assert r[coloured, SATURATION].max() < 2 and r[coloured, CONTRAST].min() >= 0.5 and r[coloured, CONTRAST].max() < 1.5
    cut = r[:, CUTOUT_SIZE_H] > 0
    assert set(r[cut, CUTOUT_SIZE_H].unique().tolist()) == {16.0}  # int(32·0.5 + 0.5)
    assert r[cut, CUTOUT_H].min() == 0 and r[cut, CUTOUT_H].max() == 32  # even side: centre in [0, H]


def test_idc_always_applies_flip_colour_cutout_and_one_geometric_op():
    rows = augment.sample_params(N, "color_crop_cutout_flip_scale_rotate", (28, 28), "idc",
                                 generator=torch.Generator().manual_seed(1))
    ops = active_ops(rows)
    assert all({"color", "cutout"} <= o for o in ops)
    assert abs(sum("flip" in o for o in ops) / N - 0.5) < 0.03
    geometric = [o & {"crop", "scale", "rotate"} for o in ops]
    assert all(len(g) <= 1 for g in geometric)
    for op in ("scale", "rotate"):
        assert abs(sum(op in g for g in geometric) / N - 1 / 3) < 0.03
    assert set(rows[:, CUTOUT_SIZE_H].unique().tolist()) == {14.0}  # int(28·0.5 + 0.5)
    assert rows[:, CUTOUT_H].max() == 28


def test_dance_strategy_rows_and_one_op_per_call():
    rows = augment.sample_params(500, augment.DANCE_STRATEGY, (32, 32), "idc",
                                 generator=torch.Generator().manual_seed(2))
    assert (rows[:, FLIP] == 0).all() and (rows[:, SCALE_W] == 1).all() and (rows[:, ANGLE] == 0).all()
    assert (rows[:, CUTOUT_SIZE_H] == 16).all() and (rows[:, SATURATION] != 1).all()
    batch = augment.sample_params(400, augment.DM_STRATEGY, (32, 32), "vico", one_op_per_call=True,
                                  generator=torch.Generator().manual_seed(3))
    kinds = {frozenset(o) for o in active_ops(batch)} - {frozenset()}
    assert len(kinds) == 1  # one op for the whole call, per-sample values


def test_sampling_is_deterministic_per_generator_and_validates():
    a = augment.sample_params(10, augment.DM_STRATEGY, (8, 8), generator=torch.Generator().manual_seed(5))
    b = augment.sample_params(10, augment.DM_STRATEGY, (8, 8), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="strategy"):
        augment.sample_params(3, "color_blur", (8, 8))
    with pytest.raises(ValueError, match="convention"):
        augment.sample_params(3, "color", (8, 8), "kornia")
    with pytest.raises(ValueError, match="image_size"):
        augment.sample_params(3, "color", (0, 8))
