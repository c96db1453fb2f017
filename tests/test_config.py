"""Configs in and out: `dance-ext config` → YAML → `condense --config` gives the run the flags
give; a saved metrics.json reruns its run bit for bit; precedence; one-line errors."""
import json
import re

import pytest
import torch
import yaml

import dance_ext
from dance_ext import cli

pytestmark = pytest.mark.usefixtures("single_thread")
QUIET = ["--eval-runs", "0", "--no-progress"]


def _meta(folder):
    meta = json.loads((folder / "metrics.json").read_text())["meta"]
    del meta["seconds"]  # an output, not a setting
    return meta


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
    out = tmp_path_factory.mktemp("experts")
    return dance_ext.pretrain_experts("digits", num=2, epochs=3, out=out, width=8, depth=2, progress=False)


def test_resolved_yaml_round_trip_equals_the_flags(tmp_path, capsys):
    flags = ["digits", "--method", "dm", "--ipc", "1", "--preset", "quick", "--budget", "0.5"]
    assert cli.main(["config", *flags, "--set", "iterations=4", "--set", "width=8"]) == 0
    text = capsys.readouterr().out
    settings = yaml.safe_load(text)
    assert settings["dataset"] == "digits" and settings["iterations"] == 4 and settings["budget"] == 0.5
    assert settings["preset"] == "quick" and settings["method"] == "dm" and settings["seed"] == 0
    (tmp_path / "run.yaml").write_text(text)
    assert cli.main(["condense", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "a"), *QUIET]) == 0
    assert cli.main(["condense", *flags, "--iterations", "4", "--set", "width=8", "--out", str(tmp_path / "b"),
                     *QUIET]) == 0
    assert _meta(tmp_path / "a") == _meta(tmp_path / "b")
    assert torch.equal(dance_ext.load(tmp_path / "a").images, dance_ext.load(tmp_path / "b").images)


def test_metrics_json_reruns_its_run_bit_for_bit(tmp_path, experts):
    first, again = tmp_path / "first", tmp_path / "again"
    assert cli.main(["condense", "digits", "--preset", "quick", "--iterations", "4", "--experts", str(experts.path),
                     "--set", "num_experts=2", "--set", "width=8", "--set", "depth=2", "--seed", "3",
                     "--out", str(first), *QUIET]) == 0
    assert cli.main(["condense", "--config", str(first / "metrics.json"), "--out", str(again), *QUIET]) == 0
    assert _meta(again) == _meta(first)
    assert _meta(again)["seed"] == 3 and _meta(again)["experts"]["path"] == str(experts.path)
    a, b = dance_ext.load(first), dance_ext.load(again)
    assert torch.equal(a.images, b.images) and a.history == b.history


def test_flags_and_set_win_over_the_config(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "digits", "method": "dm", "ipc": 2, "preset": "quick",
                                  "iterations": 3, "width": 8, "lr_img": 0.5, "eval-runs": 0}))
    out = tmp_path / "out"
    assert cli.main(["condense", "--config", str(config), "--ipc", "1", "--set", "lr_img=0.25", "--out", str(out),
                     "--no-progress"]) == 0
    meta = _meta(out)
    assert (meta["ipc"], meta["lr_img"], meta["iterations"], meta["width"], meta["method"]) == (1, 0.25, 3, 8, "dm")


def test_yaml_numbers_in_exponent_form_are_numbers(tmp_path):
    (tmp_path / "c.yaml").write_text("method: dm\nipc: 1\niterations: 1\nlr_img: 1e-2\nwidth: 8\n")
    assert cli.main(["condense", "digits", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o"),
                     *QUIET]) == 0
    assert _meta(tmp_path / "o")["lr_img"] == 0.01


BAD = [
    ("c.yaml", "ipcs: 3\n", r"config: .*c\.yaml: unknown key 'ipcs'; valid: .*ipc"),
    ("c.yaml", "ipc: ten\n", r"config: .*c\.yaml: ipc: expected int or None, got 'ten'"),
    ("c.yaml", "width: 8.5\n", r"config: .*width: expected int, got 8\.5"),
    ("c.yaml", "resume: 1\n", r"config: .*resume: expected bool, got 1"),
    ("c.yaml", "method: gan\n", r"config: .*method: expected one of \['random', 'herding', 'dm', 'dance'\]"),
    ("c.yaml", "ipc: [1\n", r"config: .*c\.yaml is not valid YAML: "),
    ("c.json", "{'ipc': 1}", r"config: .*c\.json is not valid JSON: "),
    ("c.yaml", "- ipc\n", r"config: .*c\.yaml: expected a mapping of settings, got list"),
    ("c.yaml", None, r"config: no such file .*c\.yaml"),
    ("dir.yaml", "folder", r"config: cannot read .*dir\.yaml"),
]


@pytest.mark.parametrize("name,content,match", BAD)
def test_bad_configs_are_one_line_errors(name, content, match, tmp_path, monkeypatch, capsys):
    path = tmp_path / name
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    out = tmp_path / "out"
    cheap = ["--iterations", "1", "--set", "width=8"]  # should a check ever fail
    monkeypatch.setenv("DANCE_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("sys.argv", ["dance-ext", "condense", "--config", str(path), "--out", str(out), *cheap, *QUIET])
    with pytest.raises(SystemExit) as info:
        cli.run()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("dance-ext: error: config: "), err
    assert re.search(match, err), err
    assert not out.exists()


def test_other_commands_take_their_own_options(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("num: 1\nepochs: 1\nwidth: 8\nno-progress: true\n")
    out = tmp_path / "experts"
    assert cli.main(["pretrain", "--config", str(tmp_path / "p.yaml"), "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["num_experts"] == 1
    (tmp_path / "bad.yaml").write_text("lr_img: 0.1\n")  # a condense setting, not pretrain's
    with pytest.raises(ValueError, match="unknown key 'lr_img'"):  # cheap should the check ever fail
        cli.main(["pretrain", "--config", str(tmp_path / "bad.yaml"), "--num", "1", "--epochs", "1", "--width", "8",
                  "--out", str(tmp_path / "not-written"), "--no-progress"])
