"""CutMix, the training epoch, and the DM / DANCE evaluation protocols on tiny digits."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from dance_ext import utils
from dance_ext.data import as_class_data
from dance_ext.evaluate import evaluate
from dance_ext.protocols import dance_epochs
from dance_ext.training import accuracy, cutmix, normalizer, train_epoch
from dance_ext.utils import derive_seed, make_generator

FAST = dict(arch="convnet", width=8, progress=False)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def digits():
    return as_class_data("digits", split="train", device="cpu"), as_class_data("digits", split="test", device="cpu")


def real_subset(data, per_class, seed=0):
    """(images, labels) with the first ``per_class`` images of each class after a seeded shuffle."""
    order = torch.randperm(data.labels.numel(), generator=make_generator(seed))
    picks = [order[data.labels[order] == c][:per_class] for c in range(data.num_classes)]
    idx = torch.cat(picks)
    return data.images[idx], data.labels[idx]


class FakeResult:
    """The duck type evaluate() accepts: .decoded() in [0, 1] pixel space and .meta."""

    def __init__(self, images, labels, data, method):
        self.images, self.labels = images, labels
        self.meta = {"method": method, "dataset": data.name, "mean": list(data.mean), "std": list(data.std),
                     "num_classes": data.num_classes}

    def decoded(self):
        return self.images, self.labels


# ---- CutMix ------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
       seed=st.integers(0, 2**31))
def test_cutmix_pastes_one_box_from_the_permutation(n, c, h, w, seed):
    # sample i is filled with value i + 1, so every pixel tells which sample it came from
    x = (torch.arange(n, dtype=torch.float32) + 1).view(n, 1, 1, 1).expand(n, c, h, w).contiguous()
    y = torch.arange(n)
    x_before = x.clone()
    mixed, y_a, y_b, ratio = cutmix(x, y, make_generator(seed))
    assert torch.equal(x, x_before), "cutmix must not modify its input"
    assert torch.equal(y_a, y) and sorted(y_b.tolist()) == list(range(n))
    assert 0.0 <= ratio <= 1.0
    perm = y_b
    source = mixed - 1  # the sample index each pixel came from
    box = source[0, 0] == perm[0] if perm[0] != 0 else None
    for i in range(n):
        assert torch.equal(source[i], source[i, :1].expand(c, h, w)), "the box spans every channel"
        values = set(source[i].unique().long().tolist())
        assert values <= {i, int(perm[i])}
        if perm[i] != i:
            inside = source[i, 0] == perm[i]
            box = inside if box is None else box
            assert torch.equal(inside, box), "every sample gets the same box"
    if box is not None:
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        if rows.numel():
            # a full rectangle whose area is what ratio says
            assert box.sum() == rows.numel() * cols.numel()
            assert rows.max() - rows.min() + 1 == rows.numel() and cols.max() - cols.min() + 1 == cols.numel()
        assert math.isclose(ratio, 1 - int(box.sum()) / (h * w))


def test_cutmix_is_deterministic_and_box_statistics_match_beta11():
    x, y = torch.randn(4, 2, 9, 7), torch.arange(4)
    a, b = cutmix(x, y, make_generator(3)), cutmix(x, y, make_generator(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and a[3] == b[3]
    # λ ~ U[0,1), side √(1−λ), centre uniform and clipped: E[ratio] = 1 − ∫ t(1−√t/4)² dt ≈ 0.679
    gen = make_generator(0)
    ratios = [cutmix(torch.zeros(1, 1, 64, 64), torch.zeros(1, dtype=torch.long), gen)[3] for _ in range(1000)]
    assert 0.64 < sum(ratios) / len(ratios) < 0.72


def test_cutmix_rejects_bad_shapes():
    with pytest.raises(ValueError, match="x: expected a 4-D"):
        cutmix(torch.zeros(3, 4, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="y: expected a label tensor"):
        cutmix(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.long))


# ---- one epoch and accuracy ----------------------------------------------------------------
def test_train_epoch_is_deterministic_and_learns(digits):
    train, _ = digits
    images, labels = real_subset(train, 10)
    norm = normalizer(train.mean, train.std, train.channels, "cpu")

    def run():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(images[0].numel(), train.num_classes))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        gen = make_generator(1)
        losses = [float(train_epoch(model, opt, images, labels, 32, gen, "color_crop_flip_scale_rotate", "idc",
                                    0.5, norm)) for _ in range(15)]
        return model, losses

    (m1, l1), (m2, l2) = run(), run()
    assert l1 == l2 and all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    assert l1[-1] < l1[0]
    assert accuracy(m1, images, labels, 16, norm) > 30.0


def test_train_epoch_and_accuracy_reject_bad_arguments(digits):
    train, _ = digits
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(train.images[0].numel(), 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        train_epoch(model, opt, train.images[:8], train.labels[:8], 0, make_generator(0))
    with pytest.raises(ValueError, match="cutmix_p"):
        train_epoch(model, opt, train.images[:8], train.labels[:8], 4, make_generator(0), cutmix_p=1.5)
    with pytest.raises(ValueError, match="images: expected at least one"):
        accuracy(model, train.images[:0], train.labels[:0])
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1)


# ---- protocols ---------------------------------------------------------------------------------
class SpySGD(torch.optim.SGD):
    """Records every optimizer made, its lr at each step and whether momentum state existed."""
    made: list

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = []
        SpySGD.made.append(self)

    def step(self, closure=None):
        self.steps.append((self.param_groups[0]["lr"], len(self.state)))
        return super().step(closure)


@pytest.fixture
def spy_sgd(monkeypatch):
    SpySGD.made = []
    monkeypatch.setattr(torch.optim, "SGD", SpySGD)
    return SpySGD.made


def test_dm_protocol_drops_lr_with_a_fresh_optimizer(digits, spy_sgd):
    train, test = digits
    images, labels = real_subset(train, 10)  # 100 images: one batch of 256 per epoch
    out = evaluate((images, labels), test, runs=1, epochs=4, protocol="dm", **FAST)
    assert out["epochs"] == 4 and out["epochs_run"] == 5  # epochs 0 … E, as the official loop
    first, second = spy_sgd
    # epochs 0 … E//2+1 = 3 at lr 0.01; then a new optimizer at 0.001 whose momentum starts empty
    assert [lr for lr, _ in first.steps] == [0.01] * 4
    assert [lr for lr, _ in second.steps] == [pytest.approx(0.001)]
    assert second.steps[0][1] == 0 and first.steps[-1][1] > 0
    assert second.defaults["momentum"] == 0.9 and second.defaults["weight_decay"] == 5e-4
    assert out["runs"] == out["best_runs"]  # DM tests only after the last epoch


def test_dance_protocol_multistep_schedule_and_checkpoints(digits, spy_sgd):
    train, test = digits
    images, labels = real_subset(train, 3)  # 30 images, batch 64: one step per epoch
    result = FakeResult(images, labels, train, method="dance")
    out = evaluate(result, test, runs=1, epochs=6, eval_every=2, **FAST)
    assert out["protocol"] == "dance" and out["epochs_run"] == 6 and out["batch_size"] == 64
    assert "flip" not in out["strategy"] and out["cutmix_p"] == 0.5  # digits are not mirror symmetric
    (opt,) = spy_sgd
    # milestones [2E//3, 5E//6] = [4, 5], γ 0.2
    assert [lr for lr, _ in opt.steps] == pytest.approx([0.01] * 4 + [0.002, 0.0004])
    assert out["best_runs"][0] >= out["runs"][0]


def test_dance_epochs_follow_ipc_epoch():
    assert dance_epochs("cifar10", 50, 10) == 1500
    assert dance_epochs("imagenette", 1, 10) == 3000
    assert dance_epochs("imagewoof", 40, 10) == 1500   # ipc 10, f 2
    assert dance_epochs("imagenet", 10, 100) == 1300   # 2000·2/3 floored to a multiple of 100


def test_evaluate_returns_sane_values_and_is_deterministic(digits):
    train, test = digits
    images, labels = real_subset(train, 5)
    kwargs = dict(runs=2, epochs=3, seed=7, **FAST)
    a = evaluate((images, labels), test, **kwargs)
    b = evaluate((images, labels), test, **kwargs)
    assert a["runs"] == b["runs"] and a["best_runs"] == b["best_runs"]
    assert len(a["runs"]) == 2 and all(0.0 <= r <= 100.0 for r in a["runs"])
    assert a["mean"] == pytest.approx(sum(a["runs"]) / 2)
    assert a["std"] == pytest.approx(abs(a["runs"][0] - a["runs"][1]) / 2)  # ddof 0
    assert a["protocol"] == "dm" and a["arch"] == "convnet" and a["seconds"] > 0
    assert a["test_images"] == test.labels.numel() and a["train_images"] == 50


def test_training_on_a_real_subset_beats_chance(digits):
    train, test = digits
    images, labels = real_subset(train, 10)
    out = evaluate((images, labels), test, runs=1, epochs=80, protocol="dm", arch="convnet", width=16,
                   progress=False)
    assert out["mean"] > 50.0  # chance is 10 %


def test_evaluate_rejects_bad_arguments(digits):
    train, test = digits
    images, labels = real_subset(train, 2)
    with pytest.raises(ValueError, match="runs"):
        evaluate((images, labels), test, runs=0, **FAST)
    with pytest.raises(ValueError, match="epochs"):
        evaluate((images, labels), test, epochs=0, **FAST)
    with pytest.raises(ValueError, match="protocol"):
        evaluate((images, labels), test, protocol="idc", **FAST)
    with pytest.raises(ValueError, match="arch"):
        evaluate((images, labels), test, epochs=1, progress=False, arch="nonet")
    with pytest.raises(ValueError, match="test"):
        evaluate((images.expand(-1, 3, -1, -1), labels), test, epochs=1, **FAST)
    with pytest.raises(ValueError, match="test"):
        evaluate((torch.nn.functional.pad(images, (1, 1, 1, 1)), labels), test, epochs=1, **FAST)
    with pytest.raises(ValueError, match="labels"):
        evaluate((images, labels + 10), test, epochs=1, **FAST)
    with pytest.raises(TypeError, match="result"):
        evaluate(images, test, **FAST)
    with pytest.raises(ValueError, match="seed"):
        evaluate((images, labels), test, seed=-3, **FAST)


def test_evaluate_leaves_global_rng_alone(digits):
    train, test = digits
    images, labels = real_subset(train, 2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate((images, labels), test, runs=1, epochs=1, **FAST)
    assert torch.equal(torch.rand(3), expected)


def test_seeded_network_is_reproducible():
    build = lambda: torch.nn.Linear(4, 3)  # noqa: E731
    a = utils.seeded_network(build, 5, "cpu")
    b = utils.seeded_network(build, 5, "cpu")
    c = utils.seeded_network(build, 6, "cpu")
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
