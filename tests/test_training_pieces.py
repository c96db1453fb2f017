"""CutMix's loss and the per-batch decisions of the training epoch (ALGORITHMS.md §3.3, §3.11).

cutmix_loss weights CE(y) by the uncovered fraction ``ratio`` and CE(y[π]) by the box's
(1 − ratio); train_epoch decides CutMix per batch with probability cutmix_p, draws one
DSA op per batch with per-sample parameters, feeds every sample once per epoch, and
returns the sample-weighted mean of the batch losses it optimised.
"""

import pytest
import torch

from dance_ext import augment_params as aug_mod

from dance_ext import training as train_mod
from dance_ext.utils import make_generator

pytestmark = pytest.mark.usefixtures("single_thread")

NUM_CLASSES = 3


def ce(logits, y):
    """Mean cross-entropy written out, independent of F.cross_entropy."""
    return (logits.logsumexp(dim=1) - logits.gather(1, y.view(-1, 1)).squeeze(1)).mean()


# ---- cutmix_loss and the ratio -------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.85, 1.0])
def test_cutmix_loss_weights_the_labels_by_their_areas(ratio):
    logits = torch.tensor([[4.0, 0.0, -1.0], [0.5, 3.0, 0.0], [0.0, 0.2, 2.5], [1.0, -2.0, 0.0]],
                          dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])       # the labels the logits favour: low CE
    y_perm = torch.tensor([2, 0, 1, 1])  # the pasted images' labels: high CE
    ce_y, ce_perm = ce(logits, y), ce(logits, y_perm)
    assert ce_perm - ce_y > 2  # the two terms are far apart, so a swap shows
    loss = train_mod.cutmix_loss(logits, y, y_perm, ratio)
    torch.testing.assert_close(loss, ratio * ce_y + (1 - ratio) * ce_perm)
    if ratio != 0.5:
        assert not torch.isclose(loss, (1 - ratio) * ce_y + ratio * ce_perm)


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_ratio_is_the_fraction_left_uncovered(seed):
    """For a seeded draw on a non-square image: pixels inside one box come from x[π],
    the rest are untouched, and ratio = 1 − box_area/(H·W)."""
    n, h, w = 5, 9, 14
    x = torch.rand(n, 2, h, w, generator=torch.Generator().manual_seed(100 + seed))
    y = torch.arange(n)
    mixed, y_a, y_b, ratio = train_mod.cutmix(x, y, torch.Generator().manual_seed(seed))
    perm = y_b  # labels are the sample indices
    assert torch.equal(y_a, y) and sorted(perm.tolist()) == list(range(n))
    box = (mixed != x).any(dim=1)  # (n, h, w): where a sample was overwritten
    moved = [i for i in range(n) if perm[i] != i]
    assert moved, "a permutation with a moved sample (the seeds are chosen so)"
    area = int(box[moved[0]].sum())
    assert 0 < area < h * w  # a box was pasted (the seeds are chosen so) and did not cover everything
    for i in range(n):
        inside = box[moved[0]] if i in moved else torch.zeros(h, w, dtype=torch.bool)
        assert torch.equal(box[i], inside), "one box for all samples"
        assert torch.equal(mixed[i][:, inside], x[perm[i]][:, inside])
    rows, cols = box[moved[0]].any(1).sum(), box[moved[0]].any(0).sum()
    assert area == rows * cols, "the box is a rectangle"
    assert ratio == pytest.approx(1 - area / (h * w), abs=1e-12)
    # the loss of the mixed batch follows the areas
    logits = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(train_mod.cutmix_loss(logits, y_a, y_b, ratio),
                               ratio * ce(logits, y) + (1 - ratio) * ce(logits, perm))


# ---- train_epoch ---------------------------------------------------------------------------------
def dataset(n=30, size=(6, 5), seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, *size, generator=gen)
    labels = torch.arange(n) % NUM_CLASSES
    return images, labels


def model_and_opt(images, lr=0.1):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(images[0].numel(), NUM_CLASSES))
    return model, torch.optim.SGD(model.parameters(), lr=lr)


class Spy:
    """Wraps a function of the train module and records what it returned."""

    def __init__(self, monkeypatch, name):
        self.calls, self.original = [], getattr(train_mod, name)
        monkeypatch.setattr(train_mod, name, self)

    def __call__(self, *args, **kwargs):
        out = self.original(*args, **kwargs)
        self.calls.append((args, kwargs, out))
        return out


def test_cutmix_is_decided_per_batch(monkeypatch):
    images, labels = dataset(n=64)
    model, opt = model_and_opt(images)
    spy = Spy(monkeypatch, "cutmix")
    gen = make_generator(0)
    batches = 64 // 2
    per_epoch = []
    for _ in range(4):
        before = len(spy.calls)
        train_mod.train_epoch(model, opt, images, labels, 2, gen, cutmix_p=0.5)
        per_epoch.append(len(spy.calls) - before)
    # Binomial(32, 1/2) per epoch: some batches mixed and some not, in every epoch
    assert all(4 <= k <= batches - 4 for k in per_epoch), per_epoch
    for p, expected in ((0.0, 0), (1.0, batches)):
        before = len(spy.calls)
        train_mod.train_epoch(model, opt, images, labels, 2, gen, cutmix_p=p)
        assert len(spy.calls) - before == expected, p


def test_train_epoch_returns_the_sample_weighted_loss_it_optimised(monkeypatch):
    """The loss of a batch is CE(y) when not mixed, ratio·CE(y) + (1−ratio)·CE(y[π])
    when mixed (y first: it labels the uncovered area); the epoch's value is the mean
    over samples (the last batch is smaller)."""
    images, labels = dataset(n=30)
    model, opt = model_and_opt(images)
    spy = Spy(monkeypatch, "cutmix")
    seen = []
    model.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].detach().clone(), out.detach().clone())))
    gen = make_generator(3)
    for _ in range(3):
        start_calls, start_seen = len(spy.calls), len(seen)
        value = train_mod.train_epoch(model, opt, images, labels, 4, gen, cutmix_p=0.5)
        mixes = [out for _, _, out in spy.calls[start_calls:]]
        total, count, mixed = 0.0, 0, 0
        for x, logits in seen[start_seen:]:
            match = [out for out in mixes if out[0].shape == x.shape and torch.equal(out[0], x)]
            if match:
                _, y_a, y_b, ratio = match[0]
                loss = ratio * ce(logits, y_a) + (1 - ratio) * ce(logits, y_b)
                mixed += 1
            else:  # not mixed: x is a batch of dataset images; their labels
                index = [int((images == xi).flatten(1).all(1).nonzero()) for xi in x]
                loss = ce(logits, labels[index])
            total += float(loss) * x.shape[0]
            count += x.shape[0]
        assert count == 30 and len(seen) - start_seen == 8  # 7 batches of 4 and one of 2
        assert 0 < mixed < 8 and mixed == len(mixes)
        assert float(value) == pytest.approx(total / count, rel=1e-5)


def test_every_sample_once_per_epoch_in_a_new_order():
    images, labels = dataset(n=30)
    model, opt = model_and_opt(images, lr=0.0)
    seen = []
    model.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    gen = make_generator(5)
    orders = []
    for _ in range(2):
        seen.clear()
        train_mod.train_epoch(model, opt, images, labels, 7, gen)
        fed = torch.cat(seen)
        assert [len(b) for b in seen] == [7, 7, 7, 7, 2]
        order = [int((images == xi).flatten(1).all(1).nonzero()) for xi in fed]
        assert sorted(order) == list(range(30)), "every sample exactly once"
        orders.append(order)
    assert orders[0] != orders[1] and orders[0] != list(range(30))


def test_dsa_draws_one_op_per_batch_with_per_sample_parameters(monkeypatch):
    """The non-siamese evaluation mode (§1.6, §2.2): one op chosen per mini-batch,
    parameters drawn per sample."""
    images, labels = dataset(n=64, size=(12, 12))
    model, opt = model_and_opt(images)
    spy = Spy(monkeypatch, "sample_params")
    ident = torch.tensor(aug_mod.IDENTITY_ROW)
    groups = {"scale": [aug_mod.SCALE_W], "rotate": [aug_mod.ANGLE], "crop": [aug_mod.SHIFT_H, aug_mod.SHIFT_W],
              "color": [aug_mod.SATURATION], "cutout": [aug_mod.CUTOUT_SIZE_H], "flip": [aug_mod.FLIP]}
    train_mod.train_epoch(model, opt, images, labels, 8, make_generator(0), aug_mod.DM_STRATEGY, "vico")
    assert len(spy.calls) == 8
    chosen = set()
    for _, _, rows in spy.calls:
        rows = rows.cpu()
        assert rows.shape == (8, aug_mod.NUM_PARAMS), "one row per sample"
        ops = {op for op, cols in groups.items() if (rows[:, cols] != ident[cols]).any()}
        assert len(ops) == 1, f"one op per batch, got {ops}"
        op = ops.pop()
        chosen.add(op)
        if op in ("scale", "rotate", "color"):
            assert len(rows.unique(dim=0)) == 8, "per-sample parameters"
    assert len(chosen) >= 3, "the op changes from batch to batch"
