"""Recipes and what they stand on: the paper presets per dataset (docs/ALGORITHMS.md §1.5, §3.8),
the budget knob, the herding baseline, figures, and python/reproduce.py end to end on digits
at a CI-sized budget."""
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

import dance_ext
from dance_ext import presets
from dance_ext.baselines import herding_indices
from dance_ext.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"mnist": 28, "fashion-mnist": 28, "svhn": 32, "cifar10": 32, "cifar100": 32, "tinyimagenet": 64}
SUBSETS = ("imagenette", "imagewoof", "imagefruit", "imagemeow", "imagesquawk", "imageyellow")

pytestmark = pytest.mark.usefixtures("single_thread")


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "python" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- paper presets ------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", sorted(SMALL))
@pytest.mark.parametrize("ipc", [1, 10, 50])
def test_paper_dance_small_datasets(dataset, ipc):
    c = presets.resolve("dance", "paper", dataset, ipc, (SMALL[dataset],) * 2, {})
    assert (c.iterations, c.batch_real, c.batch_syn_max, c.momentum, c.iter_calib) == (10000, 128, 200, 0.5, 1)
    assert c.lr_img == pytest.approx(0.01 * ipc)
    assert (c.factor, c.init, c.depth, c.width) == (2, "mix", 3, 128)  # TinyImageNet too: depth 3
    assert (c.num_experts, c.pretrain_num, c.pretrain_epochs, c.pretrain_batch) == (5, 20, 60, 64)
    assert (c.eval_protocol, c.eval_epochs, c.dsa_strategy, c.budget) == ("dance", 1500, "color_crop_cutout", 1.0)


@pytest.mark.parametrize("dataset", SUBSETS)
@pytest.mark.parametrize("ipc, epochs", [(1, 2000), (10, 1500)])  # IDC's ipc_epoch of ipc·f² = 4, 40
def test_paper_dance_imagenet_subsets(dataset, ipc, epochs):
    c = presets.resolve("dance", "paper", dataset, ipc, (128, 128), {})
    assert c.lr_img == pytest.approx(0.1 * ipc)
    assert (c.depth, c.factor, c.iterations, c.batch_real) == (5, 2, 10000, 128)
    assert (c.num_experts, c.pretrain_num, c.pretrain_epochs, c.pretrain_batch) == (5, 5, 80, 128)
    assert (c.eval_protocol, c.eval_epochs) == ("dance", epochs)


@pytest.mark.parametrize("dataset, size", [*SMALL.items(), *((s, 128) for s in SUBSETS)])
def test_paper_dm_every_dataset(dataset, size):
    c = presets.resolve("dm", "paper", dataset, 10, (size, size), {})
    assert (c.iterations, c.lr_img, c.momentum, c.batch_real, c.factor, c.init) == (20000, 1.0, 0.5, 256, 1, "real")
    assert (c.dsa_convention, c.iter_calib, c.depth) == ("vico", 0, 5 if size == 128 else 3)
    assert (c.eval_protocol, c.eval_epochs) == ("dm", 1000)


def test_paper_dm_cifar10_large_ipc_lr():
    assert presets.resolve("dm", "paper", "cifar10", 100, (32, 32), {}).lr_img == 10.0
    assert presets.resolve("dm", "paper", "cifar100", 100, (32, 32), {}).lr_img == 1.0


@pytest.mark.parametrize("method", presets.SELECTIONS)
def test_paper_selections_need_no_optimisation(method):
    c = presets.resolve(method, "paper", "fashion-mnist", 10, (28, 28), {})
    assert (c.method, c.iterations, c.factor, c.init, c.eval_protocol) == (method, 0, 1, "real", "dm")


# ---- budget ---------------------------------------------------------------------------------
def test_budget_scales_steps_linearly_and_sizes_by_sqrt():
    full = presets.resolve("dance", "paper", "cifar10", 10, (32, 32), {})
    c = presets.resolve("dance", "paper", "cifar10", 10, (32, 32), {"budget": 0.25})
    # experts of 15 epochs (< 20): no calibration, its time as 1.5× the iterations
    assert (c.iterations, c.pretrain_epochs, c.pretrain_num, c.num_experts, c.iter_calib) == (3750, 15, 5, 5, 0)
    assert (c.width, c.batch_real, c.eval_epochs, c.budget) == (64, 64, 750, 0.25)
    assert (c.lr_img, c.factor, c.depth) == (full.lr_img, full.factor, full.depth)  # the papers' rates kept
    tiny = presets.resolve("dance", "paper", "fashion-mnist", 1, (28, 28), {"budget": 0.03})
    # width rounds up to a multiple of 16, batch_real stays >= 32, experts used <= pretrained
    assert (tiny.iterations, tiny.width, tiny.batch_real, tiny.pretrain_num, tiny.num_experts) == (450, 32, 32, 1, 1)
    assert tiny.eval_epochs == round(1500 * math.sqrt(0.03))
    assert presets.resolve("dm", "paper", "fashion-mnist", 1, (28, 28), {"budget": 0.03}).iterations == 600


def test_calibration_needs_experts_trained_a_third_of_the_papers_epochs():
    half = presets.resolve("dance", "paper", "cifar10", 10, (32, 32), {"budget": 0.5})
    assert (half.pretrain_epochs, half.iter_calib, half.iterations) == (30, 1, 5000)
    low = presets.resolve("dance", "paper", "cifar10", 10, (32, 32), {"budget": 0.3})
    assert (low.pretrain_epochs, low.iter_calib, low.iterations) == (18, 0, 4500)
    quick = presets.resolve("dance", "quick", "digits", 10, (8, 8), {})
    assert (quick.pretrain_epochs, quick.iter_calib, quick.iterations) == (10, 0, 300)
    # explicit settings win over the rule
    kept = presets.resolve("dance", "paper", "cifar10", 10, (32, 32), {"budget": 0.1, "iter_calib": 1})
    assert (kept.iter_calib, kept.iterations) == (1, 1500)
    assert presets.resolve("dm", "quick", "digits", 10, (8, 8), {}).iterations == 200


@pytest.mark.parametrize("ipc, budget, factor", [(10, 0.03, 2), (11, 0.03, 1), (50, 0.03, 1), (50, 0.1, 1),
                                                  (50, 0.5, 2), (50, 1, 2)])
def test_reduced_budgets_use_full_resolution_images_above_ten_per_class(ipc, budget, factor):
    c = presets.resolve("dance", "paper", "fashion-mnist", ipc, (28, 28), {"budget": budget})
    assert (c.factor, c.init) == (factor, "mix" if factor > 1 else "real")
    assert c.eval_epochs == presets.eval_epochs("dance", None, ipc * factor ** 2, 10, budget)
    found = presets.departures(c, "fashion-mnist", (28, 28))
    assert ("factor" in found) == (factor == 1) and ("init" in found) == (factor == 1)


def test_full_resolution_rule_keeps_the_protocol_and_yields_to_explicit_settings():
    # the ImageNet subsets' evaluation epochs depend on the decoded images per class: they follow
    nette = presets.resolve("dance", "paper", "imagenette", 50, (128, 128), {"budget": 0.1})
    assert (nette.factor, nette.eval_epochs) == (1, presets.eval_epochs("dance", "imagenette", 50, 10, 0.1))
    assert presets.resolve("dance", "quick", "fashion-mnist", 50, (28, 28), {}).factor == 1
    # explicit settings win over the rule; init follows an explicit factor
    kept = presets.resolve("dance", "paper", "fashion-mnist", 50, (28, 28), {"budget": 0.03, "factor": 2})
    assert (kept.factor, kept.init) == (2, "mix")


def test_every_departure_from_the_paper_is_listed_and_recorded_in_meta():
    paper = presets.resolve("dance", "paper", "fashion-mnist", 10, (28, 28), {})
    assert presets.departures(paper, "fashion-mnist", (28, 28)) == {}
    small = presets.resolve("dance", "paper", "fashion-mnist", 10, (28, 28), {"budget": 0.03, "backend": "reference"})
    found = presets.departures(small, "fashion-mnist", (28, 28))
    assert found["iter_calib"] == {"paper": 1, "used": 0} and found["iterations"] == {"paper": 10000, "used": 450}
    assert set(found) == {"iterations", "iter_calib", "batch_real", "width", "num_experts", "pretrain_epochs",
                          "pretrain_num", "eval_epochs"}  # the backend computes the same thing: not a departure
    res = dance_ext.condense("digits", ipc=1, method="dm", preset="quick", iterations=2, progress=False)
    assert res.meta["departures"]["iterations"] == {"paper": 20000, "used": 2}
    assert res.meta["departures"]["width"] == {"paper": 128, "used": 32}


def test_budget_one_is_the_preset_and_overrides_win():
    assert presets.resolve("dm", "paper", "svhn", 1, (32, 32), {"budget": 1}) == \
        presets.resolve("dm", "paper", "svhn", 1, (32, 32), {})
    c = presets.resolve("dm", "paper", "svhn", 1, (32, 32), {"budget": 0.1, "iterations": 7, "width": 128})
    assert (c.iterations, c.width, c.budget) == (7, 128, 0.1)
    assert presets.eval_epochs("dm", "svhn", 1, 10, 0.25) == 500


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, float("nan"), True, "0.5"])
def test_bad_budget_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"budget: expected a number in \(0, 1\]"):
        presets.resolve("dance", "paper", "cifar10", 1, (32, 32), {"budget": bad})


def test_budget_is_recorded_in_meta_and_cli(tmp_path):
    res = dance_ext.condense("digits", ipc=1, method="random", budget=0.5, progress=False)
    assert res.meta["budget"] == 0.5 and res.meta["eval_epochs"] == round(1000 * math.sqrt(0.5))
    out = tmp_path / "cli"
    assert cli_main(["condense", "--method", "herding", "--ipc", "1", "--budget", "0.5", "--eval-runs", "1",
                     "--eval-epochs", "2", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["meta"]["budget"] == 0.5 and metrics["meta"]["method"] == "herding"
    assert metrics["evaluation"]["epochs"] == 2


# ---- herding --------------------------------------------------------------------------------
def test_herding_indices_greedy_mean_matching():
    features = torch.tensor([[0.0, 0.0], [4.0, 0.0], [1.0, 1.0], [-4.0, 0.0], [1.0, 0.0]])
    # mean (0.4, 0.2): first the nearest row; then the row bringing the pair's mean closest
    assert herding_indices(features, 1).tolist() == [0]
    picked = herding_indices(features, 3).tolist()
    assert picked[0] == 0 and len(set(picked)) == 3
    assert herding_indices(features, 5).sort().values.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="n: expected 1 <= n <= 5"):
        herding_indices(features, 6)


def test_herding_selects_real_images_deterministically_unlike_random(tmp_path):
    data = dance_ext.load_dataset("digits")
    herd = dance_ext.condense(data, ipc=3, method="herding", progress=False)
    again = dance_ext.condense(data, ipc=3, method="herding", progress=False)
    rand = dance_ext.condense(data, ipc=3, method="random", progress=False)
    assert torch.equal(herd.images, again.images)
    assert not torch.equal(herd.images, rand.images)
    flat = data.images.flatten(1)
    for image, label in zip(herd.images.flatten(1), herd.labels):
        match = (flat == image).all(1)
        assert match.any() and (data.labels[match] == label).all()  # a real image of its own class
    assert herd.meta["herding"]["features"].startswith("random network")
    store = tmp_path / "experts"
    dance_ext.pretrain_experts(data, num=1, epochs=1, out=store, width=16, progress=False)
    with_expert = dance_ext.condense(data, ipc=3, method="herding", experts=str(store), progress=False)
    assert with_expert.meta["herding"]["features"] == "expert 0 (trained)"
    assert not torch.equal(with_expert.images, herd.images)  # another feature space, other picks


# ---- the recipe end to end ----------------------------------------------------------------------
def test_reproduce_recipe_writes_table_json_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("DANCE_EXT_CACHE", str(tmp_path / "cache"))
    reproduce = _load_script("reproduce")
    out = tmp_path / "run"
    methods, ipcs = ["random", "herding", "dm", "dance"], [1, 2]
    assert reproduce.main(["--dataset", "digits", "--ipc", *map(str, ipcs), "--methods", *methods,
                           "--budget", "0.005", "--eval-runs", "3", "--eval-epochs", "5", "--curve-points", "2",
                           "--curve-ipc", "1", "--cross-arch", "convnet", "mlp", "--out", str(out)]) == 0

    report = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["ipc"]) for r in report["rows"]] == [(m, i) for i in ipcs for m in methods]
    for row in report["rows"]:
        assert len(row["runs"]) == 3 and 0 <= row["mean"] <= 100 and row["budget"] == 0.005
        assert row["wall_seconds"] >= row["condense_seconds"] > 0 and row["protocol"] == "dance"
        assert (out / "sets" / f"{row['method']}_ipc{row['ipc']}" / "syn.pt").exists()
    dm_row = next(r for r in report["rows"] if r["method"] == "dm")
    assert dm_row["iterations"] == 100  # DM's 20000 × 0.005
    assert report["budget"] == 0.005 and report["device"] and "reproduce.py" in report["command"]
    assert report["experts"]["num"] == 1 and report["wall_seconds"] > 0
    assert set(report["curves"]) == {"dm ipc 1", "dance ipc 1"}
    assert [p["iteration"] for p in report["curves"]["dm ipc 1"]] == [0, 50, 100]
    assert {(r["set"], r["arch"]) for r in report["cross_arch"]} == \
        {(f"{m} ipc {i}", a) for m in methods for i in ipcs for a in ("convnet", "mlp")}

    table = (out / "results.md").read_text()
    assert "| method | ipc 1: ours | ipc 1: paper | ipc 2: ours | ipc 2: paper |" in table
    for m in methods:
        assert f"\n| {m} | " in table
    assert "| set | convnet | mlp |" in table and "budget: 0.005" in table

    figures = out / "figures"
    expected = [f"grid_{m}_ipc{i}.png" for m in methods for i in ipcs]
    expected += ["losses_ipc1.png", "losses_ipc2.png", "accuracy_vs_iteration_ipc1.png"]
    for name in expected:
        with Image.open(figures / name) as image:
            assert image.format == "PNG" and min(image.size) >= 100
    assert not (figures / "accuracy_vs_iteration_ipc2.png").exists()
    with Image.open(figures / "grid_dm_ipc2.png") as grid:  # 10 classes × 2 images of 8×8, 1 px gaps, × 14
        assert grid.size[1] == (10 * 9 + 1) * 14 and grid.size[0] > (2 * 9 + 1) * 14  # + the class names
