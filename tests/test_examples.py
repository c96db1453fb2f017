"""The scripts in examples/ run as a user runs them (a fresh process), on tiny budgets."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dance_ext

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, tmp_path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DANCE_EXT_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_condense_and_evaluate(tmp_path):
    out = run_example("condense_and_evaluate.py", "--ipc", "2", "--iterations", "4", "--width", "8", "--epochs", "2",
                      "--out", "set", tmp_path=tmp_path)
    assert "iteration 4: inner loss" in out and "test accuracy" in out
    result = dance_ext.load(tmp_path / "set")
    assert result.meta["method"] == "dance" and result.images.shape == (20, 1, 8, 8)
    assert len(result.evaluation["runs"]) == 2


def test_export_tensors(tmp_path):
    out = run_example("export_tensors.py", "--ipc", "2", "--iterations", "4", "--out", "export", tmp_path=tmp_path)
    images = torch.load(tmp_path / "export" / "images.pt", weights_only=True)
    labels = torch.load(tmp_path / "export" / "labels.pt", weights_only=True)
    assert "wrote 20 images" in out and images.shape == (20, 1, 8, 8)
    assert torch.equal(labels, torch.arange(10).repeat_interleave(2))
    assert torch.equal(images, dance_ext.load_set(tmp_path / "export").images)


@pytest.mark.parametrize("archs", [["mlp", "lenet"]])
def test_other_network(archs, tmp_path):
    out = run_example("other_network.py", "--archs", *archs, "--iterations", "2", "--epochs", "2", tmp_path=tmp_path)
    assert [line.split(":")[0] for line in out.splitlines()][:len(archs)] == archs
    assert len(out.splitlines()) == len(archs) + 1 and "tiny_mlp" in out.splitlines()[-1]
