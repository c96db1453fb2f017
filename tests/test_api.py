"""The public API end to end on tiny budgets: condense → result → save/load, the CLI,
checkpoint/resume, and bad input rejected before any work starts."""
import json
import math
import os

import pytest
import torch
from PIL import Image

import dance_ext
from dance_ext import cli
from dance_ext.data import load_dataset

TINY = dict(iterations=3, width=8, depth=2, batch_real=16, log_every=1, progress=False)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def experts(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("experts")
    return dance_ext.pretrain_experts(digits, num=2, epochs=1, out=out, width=8, depth=2, progress=False)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("method", ["random", "dm", "dance"])
def test_condense_result(method, digits, experts):
    kwargs = dict(experts=experts, num_experts=2, factor=2, init="mix") if method == "dance" else {}
    res = dance_ext.condense(digits, ipc=2, method=method, **TINY, **kwargs)
    assert res.images.shape == (20, 1, 8, 8) and res.images.dtype == torch.float32
    assert torch.equal(res.labels, torch.arange(10).repeat_interleave(2))
    assert torch.isfinite(res.images).all()
    meta = res.meta
    assert meta["method"] == method and meta["ipc"] == 2 and meta["dataset"] == "digits"
    assert meta["num_classes"] == 10 and meta["image_size"] == [8, 8] and meta["seed"] == 0
    json.dumps(meta)  # every setting is recorded as JSON
    if method == "random":
        # the random baseline is made of real training images of the right classes
        for img, label in zip(res.images, res.labels):
            matches = (digits.images - img).flatten(1).abs().amax(1) < 1e-6
            assert matches.any() and (digits.labels[matches] == label).all()
    else:
        assert len(res.history) == 3 and all(math.isfinite(h["inner_loss"]) for h in res.history)
    if method == "dance":
        assert meta["factor"] == 2 and meta["init"] == "mix"
        images, labels = res.decoded()
        assert images.shape == (80, 1, 8, 8) and torch.equal(labels, torch.arange(10).repeat_interleave(8))
        assert all(h["calib_loss"] is not None for h in res.history)


def test_same_seed_same_result_and_seeds_differ(digits):
    a = dance_ext.condense(digits, ipc=1, method="dm", seed=3, **TINY)
    b = dance_ext.condense(digits, ipc=1, method="dm", seed=3, **TINY)
    c = dance_ext.condense(digits, ipc=1, method="dm", seed=4, **TINY)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_save_load_round_trip(digits, tmp_path):
    res = dance_ext.condense(digits, ipc=2, method="dm", **TINY)
    res.evaluation = {"mean": 50.0, "std": 1.0, "runs": [49.0, 51.0]}
    out = res.save(tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "metrics.json", "syn.pt"]
    umask = os.umask(0)
    os.umask(umask)
    for f in out.iterdir():  # the temp files' owner-only mode must not survive the rename
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask
    back = dance_ext.load(out)
    assert torch.equal(back.images, res.images) and torch.equal(back.labels, res.labels)
    assert back.meta == json.loads(json.dumps(res.meta)) and back.history == res.history
    assert back.evaluation == res.evaluation
    grid = Image.open(out / "grid.png")
    assert grid.format == "PNG" and min(grid.size) >= 256  # 10 classes × 2 images, upscaled
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["meta"]["method"] == "dm" and metrics["evaluation"]["mean"] == 50.0


def test_failed_save_leaves_previous_files(digits, tmp_path, monkeypatch):
    res = dance_ext.condense(digits, ipc=1, method="random", progress=False)
    out = res.save(tmp_path / "out")
    before = (out / "metrics.json").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("json.dumps", broken)
    with pytest.raises(OSError):
        res.save(out)
    assert (out / "metrics.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "metrics.json", "syn.pt"]


def test_results_of_format_1_still_load(digits, tmp_path):
    """Format 1 (before syn.pt carried a checksum) is read as before, still weights_only."""
    res = dance_ext.condense(digits, ipc=1, method="random", progress=False)
    torch.save({"format_version": 1, "images": res.images, "labels": res.labels,
                "meta_json": json.dumps(res.meta)}, tmp_path / "syn.pt")
    back = dance_ext.load(tmp_path)
    assert torch.equal(back.images, res.images) and back.meta == json.loads(json.dumps(res.meta))


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        dance_ext.load(tmp_path)
    (tmp_path / "syn.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable dance_ext result"):
        dance_ext.load(tmp_path)


def test_resume_equals_uninterrupted(digits, experts, tmp_path):
    kwargs = dict(TINY, iterations=4, experts=experts, num_experts=2)
    full = dance_ext.condense(digits, ipc=1, method="dance", factor=1, init="first", **kwargs)
    ckpt = tmp_path / "ckpt"
    dance_ext.condense(digits, ipc=1, method="dance", factor=1, init="first", checkpoint_dir=ckpt,
                       **dict(kwargs, iterations=2))
    # a different configuration may not continue this checkpoint
    with pytest.raises(ValueError, match="checkpoint_dir"):
        dance_ext.condense(digits, ipc=1, method="dance", factor=1, init="first", checkpoint_dir=ckpt,
                           resume=True, **dict(kwargs, lr_img=0.5))
    resumed = dance_ext.condense(digits, ipc=1, method="dance", factor=1, init="first", checkpoint_dir=ckpt,
                                 resume=True, **kwargs)
    assert torch.equal(resumed.images, full.images)
    assert [h["iteration"] for h in resumed.history] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="resume=True"):  # an existing checkpoint is never overwritten silently
        dance_ext.condense(digits, ipc=1, method="dance", factor=1, init="first", checkpoint_dir=ckpt, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="gan"), "method"),
    (dict(ipc=0), "ipc"),
    (dict(ipc=200), "ipc: class"),                         # digits has ~143 training images per class
    (dict(ipc=40, method="dance", factor=2), r"ipc·factor²"),  # mix init needs 40·4 = 160 > 143 per class
    (dict(preset="fast"), "preset"),
    (dict(lr_img=-1), "lr_img"),
    (dict(momentum=1.5), "momentum"),
    (dict(lambda_min=0.8, lambda_max=0.2), "lambda"),
    (dict(method="dm", factor=2), "factor"),
    (dict(method="dance", factor=2, init="real"), "init"),
    (dict(backend="cuda"), "backend"),
    (dict(seed=1.5), "seed"),
])
def test_bad_settings_rejected(kwargs, match, digits):
    args = dict(ipc=1, method="dm", progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError if match != "seed" else TypeError, match=match):
        dance_ext.condense(digits, **args)


def test_unknown_override_and_dataset():
    with pytest.raises(TypeError, match="unknown setting"):
        dance_ext.condense("digits", ipc=1, method="dm", learning_rate=1.0)
    with pytest.raises(ValueError, match="digits"):  # the error lists the known names
        dance_ext.condense("imagenet-22k", ipc=1)


def test_bad_images_rejected():
    images = torch.rand(20, 1, 8, 8)
    images[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN|finite"):
        dance_ext.condense((images, torch.arange(20) % 2), ipc=1, method="dm")


def test_experts_that_do_not_match_are_rejected(experts):
    rgb = (torch.rand(40, 3, 8, 8), torch.arange(40) % 10)
    with pytest.raises(ValueError, match="experts"):
        dance_ext.condense(rgb, ipc=1, method="dance", experts=experts, num_experts=2, progress=False)
    with pytest.raises(ValueError, match="num_experts"):
        dance_ext.condense("digits", ipc=1, method="dance", experts=experts, num_experts=5, **TINY)
    with pytest.raises(TypeError, match="experts"):
        dance_ext.condense("digits", ipc=1, method="dance", experts=42, progress=False)


def test_cli_condense_writes_outputs_and_evaluates(tmp_path, experts, capsys):
    out = tmp_path / "run"
    code = cli.main(["condense", "digits", "--ipc", "1", "--iterations", "2", "--preset", "quick",
                     "--experts", str(experts.path), "--set", "num_experts=2", "--set", "width=8",
                     "--set", "depth=2", "--eval-runs", "1", "--eval-epochs", "2", "--out", str(out),
                     "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "syn.pt" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluation"]["protocol"] == "dance" and len(metrics["evaluation"]["runs"]) == 1
    assert cli.main(["evaluate", str(out), "--runs", "1", "--epochs", "1", "--no-progress"]) == 0
    assert "mean" in json.loads(capsys.readouterr().out)


def test_cli_reports_bad_input_without_traceback(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["dance-ext", "condense", "no-such-dataset", "--no-progress"])
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    assert exit_info.value.code == 2
    assert "dance-ext: error:" in capsys.readouterr().err


def test_cli_info(capsys):
    assert cli.main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == dance_ext.__version__ and "loaded" in info


def test_fused_ops_and_speed_paths_in_the_loop(digits, experts):
    kwargs = dict(TINY, experts=experts, num_experts=2, factor=2)
    reference = dance_ext.condense(digits, ipc=2, method="dance", backend="reference", **kwargs)
    fused = dance_ext.condense(digits, ipc=2, method="dance", backend="extension", **kwargs)
    assert torch.allclose(fused.images, reference.images, atol=1e-4)
    channels_last = dance_ext.condense(digits, ipc=2, method="dance", channels_last=True, **kwargs)
    assert torch.allclose(channels_last.images, fused.images, atol=1e-5)
    bf16 = dance_ext.condense(digits, ipc=2, method="dance", autocast="bf16", **kwargs)
    assert bf16.images.dtype == torch.float32 and torch.isfinite(bf16.images).all()
    assert bf16.meta["autocast"] == "bf16"
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    tf32 = dance_ext.condense(digits, ipc=2, method="dance", tf32=True, **kwargs)
    assert torch.equal(tf32.images, fused.images)  # TF32 touches CUDA only
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == flags  # restored


def test_unavailable_device_is_a_clear_error(digits):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises((ValueError, RuntimeError), match="cuda|CUDA"):
        dance_ext.condense(digits, ipc=1, method="dm", device="cuda", **TINY)
