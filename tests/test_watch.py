"""Watching a run: the callback's rows (interval means, images, lr, seconds), the log file,
TensorBoard events, grid PNGs during condensation, and progress as plain lines off a terminal."""
import copy
import json
import re
import sys

import pytest
import torch
from PIL import Image

import dance_ext
from dance_ext import cli, presets
from dance_ext.condense import Condenser
from dance_ext.data import load_dataset
from dance_ext.progress import progress_bar

pytestmark = pytest.mark.usefixtures("single_thread")
TINY = dict(width=8, depth=2, batch_real=16, progress=False)
CLI_TINY = ["condense", "digits", "--method", "dm", "--ipc", "2", "--preset", "quick", "--iterations", "4",
            "--set", "width=8", "--set", "log_every=2", "--eval-runs", "0", "--no-progress"]


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
    out = tmp_path_factory.mktemp("experts")
    return dance_ext.pretrain_experts("digits", num=2, epochs=3, out=out, width=8, depth=2, progress=False)


@pytest.mark.parametrize("method", ["dm", "dance"])
def test_callback_gets_interval_means_and_a_view_of_the_images(method, experts):
    kwargs = dict(TINY, iterations=6, **({"experts": experts, "num_experts": 2} if method == "dance" else {}))
    every_step = dance_ext.condense("digits", ipc=2, method=method, log_every=1, **kwargs)
    rows = []
    res = dance_ext.condense("digits", ipc=2, method=method, log_every=4, callback=rows.append, **kwargs)
    assert torch.equal(res.images, every_step.images)  # logging does not change the run
    assert [r["iteration"] for r in rows] == [4, 6]
    for row, (start, stop) in zip(rows, [(0, 4), (4, 6)]):
        for key in ("inner_loss", "calib_loss"):
            steps = [h[key] for h in every_step.history[start:stop]]
            want = None if None in steps else sum(steps) / len(steps)
            assert row[key] == (None if want is None else pytest.approx(want, rel=1e-5)), key
        assert row["lr"] == res.meta["lr_img"] and row["seconds"] > 0
        assert row["images"].shape == res.images.shape and not row["images"].requires_grad
    assert rows[1]["seconds"] >= rows[0]["seconds"]
    assert torch.equal(rows[-1]["images"], res.images)
    assert res.history == [{k: r[k] for k in ("iteration", "inner_loss", "calib_loss")} for r in rows]


def test_interval_means_survive_a_resume():
    """A checkpoint inside a log interval carries the loss sums, so the resumed run logs the
    same means as an uninterrupted one."""
    data = load_dataset("digits")
    config = presets.resolve("dm", "quick", "digits", 1, data.image_size,
                             {"iterations": 6, "width": 8, "batch_real": 16, "log_every": 3})

    def condenser():
        return Condenser(data, config, torch.Generator().manual_seed(0))

    full = condenser()
    full.run(6)
    saved = []

    def stop_at_two(c):
        if c.iteration == 2:
            saved.append(copy.deepcopy(c.state_dict()))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        condenser().run(6, on_checkpoint=stop_at_two, checkpoint_every=1)
    resumed = condenser()
    resumed.load_state_dict(saved[0])
    resumed.run(6)
    assert [r["iteration"] for r in full.history] == [3, 6] and resumed.history == full.history


def test_log_file_and_grids_during_condensation(tmp_path):
    out, log = tmp_path / "out", tmp_path / "logs" / "run.log"
    assert cli.main([*CLI_TINY, "--out", str(out), "--log-file", str(log), "--save-grids-every", "2"]) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("iteration=4 inner_loss=")
    assert re.fullmatch(r"iteration=2 inner_loss=\S+ lr=1 seconds=\S+", lines[0]), lines[0]
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [float(line.split()[1].split("=")[1]) for line in lines] == \
        [pytest.approx(h["inner_loss"], rel=1e-5) for h in history]
    for it in (2, 4):
        with Image.open(out / "grids" / f"grid_it{it}.png") as grid, Image.open(out / "grid.png") as final:
            assert grid.format == "PNG" and grid.size == final.size  # 10 classes × 2 images


def test_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    assert cli.main([*CLI_TINY, "--out", str(tmp_path / "out"), "--tensorboard", str(logdir),
                     "--tensorboard-images-every", "4"]) == 0
    events = EventAccumulator(str(logdir))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/inner")] == [2, 4]
    assert [e.value for e in events.Scalars("lr")] == [1.0, 1.0]
    assert [e.step for e in events.Images("synthetic")] == [4]


def test_tensorboard_missing_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    monkeypatch.setattr("sys.argv", ["dance-ext", *CLI_TINY, "--out", str(tmp_path / "out"),
                                     "--tensorboard", str(tmp_path / "tb")])
    with pytest.raises(SystemExit) as info:
        cli.run()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dance-ext: error: ")]
    assert info.value.code == 2 and len(errors) == 1
    assert errors[0].startswith("dance-ext: error: --tensorboard")
    assert "pip install 'dance_ext[tensorboard]'" in errors[0]
    assert not (tmp_path / "tb").exists()


def test_progress_is_plain_lines_off_a_terminal(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DANCE_EXT_PROGRESS_SECONDS", "0")
    dance_ext.condense("digits", ipc=1, method="dm", iterations=3, log_every=1, **dict(TINY, progress=True))
    dance_ext.pretrain_experts("digits", num=1, epochs=3, width=8, depth=2, progress=True, out=tmp_path)
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("dm ipc=1:")][-1].split("|")[0] == "dm ipc=1: 100%"
    assert sum(line.startswith("dm ipc=1:") for line in lines) >= 4  # start, every step
    assert any(line.startswith("expert 0:") for line in lines) and any(line.startswith("experts:") for line in lines)
    monkeypatch.delenv("DANCE_EXT_PROGRESS_SECONDS")  # 30 s: a short run prints its start and end only
    dance_ext.condense("digits", ipc=1, method="dm", iterations=3, log_every=1, **dict(TINY, progress=True))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("|")[0] for line in lines] == ["dm ipc=1:   0%", "dm ipc=1: 100%"], lines


def test_progress_on_a_terminal_is_tqdms_bar(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    for _ in progress_bar(range(3), desc="bar", mininterval=0):
        pass
    assert "\r" in capsys.readouterr().err  # redrawn in place
