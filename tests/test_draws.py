"""The random draws the condensation loop makes (Condenser.draw, prepare_networks, step).

test_condense_exact feeds the batched loop and the sequential reference the *same*
draws, so it cannot see a wrong draw. Here the draws themselves are checked against
ALGORITHMS.md: one DSA row per class and iteration, chosen independently per class
(§1.3, §2.2; DANCE §2.4, §3.5) and serving both the real and the synthetic images of its
class; real batches without replacement within a class (§1.1, §3.2); subsamples of the
decoded set without replacement, fresh per round (§3.4); the expert id and λ (§3.5, §3.6,
λ = 1: the init weights, λ = 0: the trained expert); DM's fresh default-initialised
network every iteration (§1.3, §1.4).
"""

import pytest
import torch

from dance_ext import augment_params as aug_mod
from dance_ext import data as data_mod
from dance_ext import experts as experts_mod
from dance_ext import models as models_mod
from dance_ext import presets as presets_mod
from dance_ext.condense import Condenser

pytestmark = pytest.mark.usefixtures("single_thread")

C, SIZE = 12, (12, 12)
FULL = "color_crop_cutout_flip_scale_rotate"
OP_COLUMNS = {"flip": [aug_mod.FLIP], "scale": [aug_mod.SCALE_W, aug_mod.SCALE_H], "rotate": [aug_mod.ANGLE],
              "crop": [aug_mod.SHIFT_H, aug_mod.SHIFT_W],
              "color": [aug_mod.BRIGHTNESS, aug_mod.SATURATION, aug_mod.CONTRAST],
              "cutout": [aug_mod.CUTOUT_SIZE_H, aug_mod.CUTOUT_SIZE_W]}
GEOMETRIC = {"crop", "scale", "rotate"}


def class_data(per_class=(8,) * C, channels=1, seed=0):
    """Random images, class c with per_class[c] images, labels interleaved (not sorted)."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 1))]
    images = torch.rand(len(labels), channels, *SIZE, generator=torch.Generator().manual_seed(seed))
    return data_mod.as_class_data((images, labels))


def expert_pool(data, num_experts=3):
    spec = models_mod.network_spec("convnet", data.channels, data.num_classes, data.image_size, 8, 2)
    flats = []
    for seed in range(2 * num_experts):
        torch.manual_seed(seed)
        flats.append(models_mod.flatten_parameters_(models_mod.build_network(spec)).clone())
    manifest = {"network": spec, "channels": data.channels, "num_classes": data.num_classes,
                "image_size": list(data.image_size)}
    return experts_mod.ExpertPool(None, manifest, torch.stack(flats[:num_experts]), torch.stack(flats[num_experts:]))


def condenser(method, data=None, ipc=2, seed=0, **overrides):
    data = class_data() if data is None else data
    base = dict(iterations=2, width=8, depth=2, batch_real=4, backend="reference",
                num_experts=3 if method == "dance" else 0)
    base.update(overrides)
    config = presets_mod.resolve(method, "paper", data.name, ipc, data.image_size, base)
    pool = expert_pool(data, config.num_experts) if method == "dance" else None
    return Condenser(data, config, torch.Generator().manual_seed(seed), pool)


def ops_of(row: torch.Tensor) -> frozenset:
    """The ops a parameter row applies (an op that drew its identity value, e.g. no flip, is invisible)."""
    ident = torch.tensor(aug_mod.IDENTITY_ROW, dtype=row.dtype)
    return frozenset(op for op, cols in OP_COLUMNS.items() if any(row[c] != ident[c] for c in cols))


# ---- one augmentation row per class ----------------------------------------------------------------
def test_dm_draw_chooses_the_op_of_every_class_independently():
    cond = condenser("dm")
    assert cond.config.dsa_convention == "vico" and cond.config.dsa_strategy == aug_mod.DM_STRATEGY
    seen = set()
    for _ in range(6):
        rows = cond.draw().inner_params
        assert rows.shape == (C, aug_mod.NUM_PARAMS)
        kinds = [ops_of(r) for r in rows]
        assert all(len(k) <= 1 for k in kinds), "vico: at most one op per row"
        # 12 classes, 6 ops: one op shared by the whole draw has probability 6^-11
        assert len(set(kinds) - {frozenset()}) >= 2, f"one op for every class of a draw: {kinds}"
        seen |= set(kinds)
        # and the parameters are drawn per class too: rows of one continuous op all differ
        for op in ("color", "scale", "rotate"):
            same_op = rows[[k == {op} for k in kinds]]
            assert len(same_op.unique(dim=0)) == len(same_op), f"{op}: classes share parameters"
    assert {frozenset({op}) for op in aug_mod.TOKENS} <= seen, "every op is drawn over a few iterations"


@pytest.mark.parametrize("strategy", [aug_mod.DANCE_STRATEGY, FULL])
def test_dance_draw_has_a_row_per_class_and_per_round(strategy):
    cond = condenser("dance", dsa_strategy=strategy, iter_calib=2)
    assert cond.config.dsa_convention == "idc"
    for _ in range(4):
        draws = cond.draw()
        tables = [draws.inner_params, *draws.calib_params]
        assert len(tables) == 3
        for rows in tables:
            assert rows.shape == (C, aug_mod.NUM_PARAMS)
            kinds = [ops_of(r) for r in rows]
            # idc: colour and cutout in every row, one geometric op at most
            assert all({"color", "cutout"} <= k and len(k & GEOMETRIC) <= 1 for k in kinds)
            # colour values are continuous: equal values would mean a row shared by classes
            assert rows[:, aug_mod.BRIGHTNESS].unique().numel() == C
            assert rows[:, aug_mod.CUTOUT_H:aug_mod.CUTOUT_W + 1].unique(dim=0).shape[0] > 1
            if strategy == FULL:
                assert len({k & GEOMETRIC for k in kinds} - {frozenset()}) >= 2, \
                    f"one geometric op for every class of a draw: {kinds}"
        # fresh rows for the inner step and for every calibration round
        assert not torch.equal(tables[0], tables[1]) and not torch.equal(tables[1], tables[2]), "rows reused"


def record_augment(cond):
    """Spy on the condenser's augmentation: (params, the rows each image got) per call."""
    calls, original = [], cond.augment

    def spy(x, params, index):
        calls.append((params, aug_mod.expand_params(params, index, x.shape[0]).clone()))
        return original(x, params, index)

    cond.augment = spy
    return calls


def rows_for(calls, params):
    got = [rows for p, rows in calls if p is params]
    return torch.cat(got) if got else torch.empty(0, aug_mod.NUM_PARAMS)


@pytest.mark.parametrize("method,overrides", [("dm", {}), ("dance", {"iter_calib": 2, "factor": 2, "init": "mix",
                                                                     "batch_syn_max": 5})])
def test_one_row_serves_the_real_and_synthetic_images_of_a_class(method, overrides):
    """The siamese property: within an iteration, every real and every synthetic image of
    class c is augmented with row c; calibration rounds use their own row c."""
    cond = condenser(method, **overrides)
    assert cond.n_real != cond.n_syn  # so that mixing up the real and synthetic class index shows
    calls = record_augment(cond)
    draws = cond.draw()
    cond.step(draws)
    labels = cond.data.labels.to(draws.real_index.device)
    real_class = labels[draws.real_index.reshape(-1)]
    assert torch.equal(real_class, torch.arange(C).repeat_interleave(cond.n_real))
    syn_class = torch.arange(C).repeat_interleave(cond.n_syn)
    inner = rows_for(calls, draws.inner_params)
    assert inner.shape[0] == C * (cond.n_real + cond.n_syn)  # the real batch, then the synthetic one
    assert torch.equal(inner[:C * cond.n_real], draws.inner_params[real_class]), "real image with another class's row"
    assert torch.equal(inner[C * cond.n_real:], draws.inner_params[syn_class]), \
        "synthetic image with another row than the real images of its class"
    for params in draws.calib_params:
        assert torch.equal(rows_for(calls, params), params[syn_class]), "calibration: a row per class"
    assert sum(len(rows) for _, rows in calls) == C * (cond.n_real + cond.n_syn * (1 + len(draws.calib_params)))


# ---- real batches and synthetic subsamples -------------------------------------------------------
@pytest.mark.parametrize("method", ["dm", "dance"])
def test_real_batches_are_drawn_without_replacement_within_the_class(method):
    per_class = tuple(5 + c % 4 for c in range(C))  # ragged: the class table is padded with -1
    data = class_data(per_class)
    cond = condenser(method, data=data, batch_real=5)
    assert cond.n_real == 5  # min(batch_real, smallest class)
    labels = data.labels
    seen = [set() for _ in range(C)]
    previous = None
    for _ in range(8):
        index = cond.draw().real_index
        assert index.shape == (C, 5)
        assert (index >= 0).all(), "a padding entry of the class table was drawn"
        assert torch.equal(labels[index], torch.arange(C).view(C, 1).expand(C, 5)), "image of another class"
        for c in range(C):
            assert len(set(index[c].tolist())) == 5, f"class {c}: an image drawn twice in one batch"
            seen[c] |= set(index[c].tolist())
        assert previous is None or not torch.equal(index, previous), "the same real batch every iteration"
        previous = index
    # over a few iterations every image of every class is drawn
    assert [len(s) for s in seen] == list(per_class)


def test_whole_class_batch_is_a_permutation_of_the_class():
    cond = condenser("dm", batch_real=100)  # more than a class holds: the whole class
    assert cond.n_real == 8
    table, _ = cond.data.class_index_table()
    index = cond.draw().real_index
    assert torch.equal(index.sort(dim=1).values, table.sort(dim=1).values)


def test_synthetic_subsamples_are_without_replacement_and_fresh_per_round():
    cond = condenser("dance", factor=2, init="mix", batch_syn_max=5, iter_calib=2)
    assert (cond.n_decoded, cond.n_syn) == (8, 5)
    for _ in range(3):
        draws = cond.draw()
        picks = [draws.inner_pick, *draws.calib_pick]
        for pick in picks:
            assert pick.shape == (C, 5) and pick.min() >= 0 and pick.max() < 8
            assert all(len(set(row.tolist())) == 5 for row in pick), "a decoded image used twice in a step"
            assert len(pick.unique(dim=0)) > 1, "every class uses the same subsample"
        assert not torch.equal(picks[0], picks[1]) and not torch.equal(picks[1], picks[2]), "subsample reused"
    # nothing to subsample: every decoded image, in order
    assert condenser("dance", factor=2, init="mix").draw().inner_pick is None


def test_dm_uses_all_ipc_synthetic_images():
    cond = condenser("dm", ipc=3, batch_syn_max=2)  # batch_syn_max is DANCE's
    assert (cond.n_decoded, cond.n_syn) == (3, 3)
    draws = cond.draw()
    assert draws.inner_pick is None and draws.calib_params == [] and draws.expert is None


# ---- networks ----------------------------------------------------------------------------------
def test_dance_expert_and_lambda_draws():
    cond = condenser("dance", num_experts=3, lambda_min=0.25, lambda_max=0.75)
    draws = [cond.draw() for _ in range(150)]
    experts = torch.cat([d.expert for d in draws])
    lams = torch.cat([d.lam for d in draws])
    assert set(experts.tolist()) == {0, 1, 2}
    assert lams.min() >= 0.25 and lams.max() < 0.75
    assert lams.min() < 0.3 and lams.max() > 0.7  # the whole range, not a part of it
    assert all(d.network_noise is None for d in draws)


@pytest.mark.parametrize("lam", [0.0, 1.0, 0.3])
def test_dance_middle_encoder_and_expert_of_the_drawn_k(lam):
    cond = condenser("dance", num_experts=3)
    pool = cond.pool
    draws = cond.draw()
    for k in (2, 1):  # not 0: a new model starts as expert 0
        draws.expert = torch.tensor([k])
        draws.lam = torch.tensor([lam])
        cond.prepare_networks(draws)
        expected = lam * pool.init_flat[k] + (1 - lam) * pool.trained_flat[k]
        torch.testing.assert_close(cond.encoder_flat, expected, rtol=0, atol=1e-6)
        if lam == 1.0:
            assert torch.equal(cond.encoder_flat, pool.init_flat[k]), "λ = 1 is the init weights"
        if lam == 0.0:
            assert torch.equal(cond.encoder_flat, pool.trained_flat[k]), "λ = 0 is the trained expert"
        assert torch.equal(cond.expert_flat, pool.trained_flat[k]), "the expert is the trained k"
        # the networks see their flat buffers
        params = torch.cat([p.reshape(-1) for p in cond.encoder.parameters()])
        assert torch.equal(params, cond.encoder_flat)


def test_dm_draws_a_fresh_default_initialised_network_every_iteration():
    cond = condenser("dm", iterations=3)
    low, high = models_mod.default_init_bounds(cond.encoder)
    low, high = low.to(cond.encoder_flat), high.to(cond.encoder_flat)
    varying = high > low  # conv/linear parameters (norm layers are fixed at 1 and 0)
    assert varying.float().mean() > 0.9
    weights = []
    for _ in range(3):
        draws = cond.draw()
        cond.step(draws)
        flat = cond.encoder_flat.detach().clone()
        assert torch.equal(flat[~varying], low[~varying]), "norm layers: weight 1, bias 0"
        assert (flat >= low).all() and (flat <= high).all()
        # U(low, high) elementwise: the noise mapped back is uniform over [0, 1)
        u = ((flat - low) / (high - low))[varying]
        assert u.min() < 0.01 and u.max() > 0.99 and abs(float(u.mean()) - 0.5) < 0.02
        torch.testing.assert_close(u, draws.network_noise[varying].to(u), rtol=0, atol=1e-4)
        weights.append(flat)
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2]), \
        "the same network in two iterations"
    # and the network the loss used is that one
    params = torch.cat([p.reshape(-1) for p in cond.encoder.parameters()])
    assert torch.equal(params, weights[-1])
