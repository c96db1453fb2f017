"""The ranges of the DSA parameter draws (sample_params) against ALGORITHMS.md §2.1 and §2.3.

Every continuous range is reached close to both ends and never left, so a halved or
shifted range fails, not only an overshoot. The integer ranges (crop shift, cutout side
and centre) are checked value by value at sizes where rounding half up, int(x + 0.5),
and rounding down, int(x), differ. (test_reference.py checks op frequencies and upper
bounds at 28 and 32 px, where both roundings agree.)
"""
import math

import pytest
import torch

# the module under test, named in one place (its name may change in a refactor)
from dance_ext import augment_params as aug

pytestmark = pytest.mark.usefixtures("single_thread")

N = 4000


def draw(strategy, size, n=N, seed=0, convention="vico"):
    rows = aug.sample_params(n, strategy, size, convention, generator=torch.Generator().manual_seed(seed))
    assert rows.shape == (n, aug.NUM_PARAMS)
    return rows.double()


def untouched_columns(rows, columns):
    """The columns an op must not write keep their identity values."""
    ident = torch.tensor(aug.IDENTITY_ROW, dtype=rows.dtype)
    others = [c for c in range(aug.NUM_PARAMS) if c not in columns]
    return torch.equal(rows[:, others], ident[others].expand(len(rows), -1))


def test_rotation_covers_plus_minus_15_degrees():
    rows = draw("rotate", (16, 16))
    assert untouched_columns(rows, [aug.ANGLE])
    degrees = rows[:, aug.ANGLE] * 180 / math.pi
    assert degrees.abs().max() <= 15 + 1e-5, "angle beyond ±15°"
    # U[-15°, 15°): both ends reached (P(max < 14.5°) = (29.5/30)^4000 ≈ e^-67)
    assert degrees.max() > 14.5 and degrees.min() < -14.5, (float(degrees.min()), float(degrees.max()))
    assert abs(float((degrees.abs() > 7.5).double().mean()) - 0.5) < 0.03  # uniform, not squeezed to the centre
    assert abs(float(degrees.mean())) < 0.5


def test_scale_covers_1_over_1_2_to_1_2_per_axis():
    rows = draw("scale", (16, 16))
    assert untouched_columns(rows, [aug.SCALE_W, aug.SCALE_H])
    for col in (aug.SCALE_W, aug.SCALE_H):
        s = rows[:, col]
        assert s.min() >= 1 / 1.2 - 1e-6 and s.max() < 1.2, (float(s.min()), float(s.max()))
        assert s.min() < 1 / 1.2 + 0.005 and s.max() > 1.2 - 0.005, (float(s.min()), float(s.max()))
        assert abs(float(s.mean()) - (1 / 1.2 + 1.2) / 2) < 0.01
    # sx and sy are two independent draws, not one isotropic factor
    sx, sy = rows[:, aug.SCALE_W], rows[:, aug.SCALE_H]
    assert (sx != sy).all()
    assert abs(float(torch.corrcoef(torch.stack([sx, sy]))[0, 1])) < 0.1


def test_colour_ranges_reach_both_ends():
    rows = draw("color", (16, 16))
    assert untouched_columns(rows, [aug.BRIGHTNESS, aug.SATURATION, aug.CONTRAST])
    for col, lo, hi in ((aug.BRIGHTNESS, -0.5, 0.5), (aug.SATURATION, 0.0, 2.0), (aug.CONTRAST, 0.5, 1.5)):
        v = rows[:, col]
        name = aug.PARAM_COLUMNS[col]
        assert v.min() >= lo and v.max() < hi, (name, float(v.min()), float(v.max()))
        near = 0.01 * (hi - lo)
        assert v.min() < lo + near and v.max() > hi - near, (name, float(v.min()), float(v.max()))
        assert abs(float(v.mean()) - (lo + hi) / 2) < 0.02 * (hi - lo), name
    # three independent draws per row
    b, s, c = rows[:, aug.BRIGHTNESS] + 0.5, rows[:, aug.SATURATION] / 2, rows[:, aug.CONTRAST] - 0.5
    corr = torch.corrcoef(torch.stack([b, s, c]))
    assert corr[0, 1].abs() < 0.1 and corr[0, 2].abs() < 0.1 and corr[1, 2].abs() < 0.1


def test_flip_is_a_fair_coin():
    rows = draw("flip", (16, 16))
    assert untouched_columns(rows, [aug.FLIP])
    assert set(rows[:, aug.FLIP].unique().tolist()) == {0.0, 1.0}
    assert abs(float(rows[:, aug.FLIP].mean()) - 0.5) < 0.03


# (H, W) → shift = int(size·0.125 + 0.5); floor would give one less at every size here
@pytest.mark.parametrize("size,shift", [((20, 12), (3, 2)), ((12, 20), (2, 3)), ((28, 36), (4, 5)),
                                        ((4, 13), (1, 2))])
def test_crop_shift_bound_rounds_half_up(size, shift):
    for s in size:
        assert int(s * 0.125) != int(s * 0.125 + 0.5)  # the sizes tell the two roundings apart
    rows = draw("crop", size)
    assert untouched_columns(rows, [aug.SHIFT_H, aug.SHIFT_W])
    for col, bound in ((aug.SHIFT_H, shift[0]), (aug.SHIFT_W, shift[1])):
        values = rows[:, col]
        assert torch.equal(values, values.round()), "integer shifts"
        # every shift in [-bound, bound] is drawn, nothing outside, about equally often
        assert sorted(values.unique().tolist()) == list(range(-bound, bound + 1)), aug.PARAM_COLUMNS[col]
        counts = torch.bincount((values + bound).long(), minlength=2 * bound + 1).double() / N
        assert (counts - 1 / (2 * bound + 1)).abs().max() < 0.03
    # independent along H and W
    assert (rows[:, aug.SHIFT_H] != rows[:, aug.SHIFT_W]).any()


# side = int(size·0.5 + 0.5) (floor differs at odd sizes); centre in [0, size − side % 2]
@pytest.mark.parametrize("size,side", [((13, 15), (7, 8)), ((15, 13), (8, 7)), ((9, 10), (5, 5))])
def test_cutout_side_rounds_half_up_and_centres_span_the_image(size, side):
    rows = draw("cutout", size)
    assert untouched_columns(rows, [aug.CUTOUT_H, aug.CUTOUT_W, aug.CUTOUT_SIZE_H, aug.CUTOUT_SIZE_W])
    for axis in range(2):
        side_col = (aug.CUTOUT_SIZE_H, aug.CUTOUT_SIZE_W)[axis]
        centre_col = (aug.CUTOUT_H, aug.CUTOUT_W)[axis]
        assert set(rows[:, side_col].unique().tolist()) == {float(side[axis])}, aug.PARAM_COLUMNS[side_col]
        last = size[axis] - side[axis] % 2  # even side: [0, H]; odd side: [0, H − 1]
        assert sorted(rows[:, centre_col].unique().tolist()) == list(range(0, last + 1)), aug.PARAM_COLUMNS[centre_col]
    assert (rows[:, aug.CUTOUT_H] != rows[:, aug.CUTOUT_W]).any()


def test_idc_always_ops_draw_the_same_ranges():
    """Under the idc convention colour and cutout are drawn for every row, with the vico ranges."""
    rows = draw("color_crop_cutout", (13, 20), convention="idc")
    assert set(rows[:, aug.CUTOUT_SIZE_H].unique().tolist()) == {7.0}
    assert set(rows[:, aug.CUTOUT_SIZE_W].unique().tolist()) == {10.0}
    assert sorted(rows[:, aug.SHIFT_H].unique().tolist()) == list(range(-2, 3))
    assert sorted(rows[:, aug.SHIFT_W].unique().tolist()) == list(range(-3, 4))
    b = rows[:, aug.BRIGHTNESS]
    assert b.min() >= -0.5 and b.max() < 0.5 and b.min() < -0.49 and b.max() > 0.49
