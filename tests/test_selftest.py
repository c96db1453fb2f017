"""`dance-ext selftest` / dance_ext.selftest(): passes on this CPU build, fails loudly and
names the check when a kernel is wrong, skips (or with DANCE_EXT_REQUIRE_KERNELS=1 fails)
where kernels are missing, and writes parseable JSON."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dance_ext
from dance_ext import extension, ops
from dance_ext.diagnostics.core import Worst
from dance_ext.cli import main

ROOT = Path(__file__).resolve().parent.parent
needs_kernels = pytest.mark.skipif(not all(extension.has_kernel(op, "cpu") for op in ("siamese_augment",
                                                                                        "class_mean_mmd")),
                                   reason="the compiled extension with CPU kernels is not built")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("DANCE_EXT_REQUIRE_KERNELS", raising=False)
    monkeypatch.delenv("DANCE_EXT_DISABLE_KERNELS", raising=False)


def test_cli_passes_on_cpu_prints_table_and_writes_json(tmp_path):
    # the real entry point in a fresh process: exit status, stdout, the JSON file
    out = tmp_path / "selftest.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("DANCE_EXT_REQUIRE_KERNELS", None)
    env.pop("DANCE_EXT_DISABLE_KERNELS", None)
    proc = subprocess.run([sys.executable, "-m", "dance_ext", "selftest", "--device", "cpu", "--quick",
                           "--json", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("check") and "result" in line and "tolerance" in line for line in lines)
    for name in ("siamese_augment vico copy rows float32 fwd+bwd", "class_mean_mmd ragged float64 fwd+bwd",
                 "opcheck class_mean_mmd", "gradcheck siamese_augment float64", "DANCE iteration extension vs"):
        assert any(line.startswith(name) for line in lines), name
    assert "0 failed" in lines[-1]
    report = json.loads(out.read_text())
    for key in ("device", "torch_version", "cuda_version", "dance_ext_version", "git_commit", "rows", "ok"):
        assert key in report, key
    assert report["device"] == "cpu" and report["ok"] is True and report["dance_ext_version"] == dance_ext.__version__
    statuses = {row["check"]: row["status"] for row in report["rows"]}
    assert statuses["siamese_augment float16/bfloat16"] == "skipped"  # the kernels take float32/float64 only
    assert set(statuses.values()) <= {"pass", "skipped"}
    if extension.has_kernel("siamese_augment", "cpu"):
        assert statuses["siamese_augment idc resampled rows float32 fwd+bwd"] == "pass"


def _broken(original, op_name):
    """The op wrapper, but backend='extension' returns its result + 1e-3 (a subtly wrong kernel)."""
    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        return out + 1e-3 if kwargs.get("backend") == "extension" else out
    wrapper.__name__ = op_name
    return wrapper


@needs_kernels
@pytest.mark.parametrize("op, failing", [
    ("siamese_augment", "siamese_augment vico copy rows float32 fwd+bwd"),
    ("class_mean_mmd", "class_mean_mmd class-major float64 fwd+bwd"),
])
def test_broken_kernel_fails_and_names_the_check(monkeypatch, capsys, tmp_path, op, failing):
    monkeypatch.setattr(ops, op, _broken(getattr(ops, op), op))
    out = tmp_path / "report.json"
    assert main(["selftest", "--device", "cpu", "--quick", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith(failing))
    assert " FAIL " in row
    assert "FAILED:" in text and failing in text.split("FAILED:")[1]
    report = json.loads(out.read_text())
    assert report["ok"] is False and failing in report["failures"]
    # the other op's parity rows still pass
    other = "class_mean_mmd" if op == "siamese_augment" else "siamese_augment"
    assert all(r["status"] == "pass" for r in report["rows"] if r["check"].startswith(other) and "fwd" in r["check"])


def test_cuda_without_a_device_is_one_line_and_status_2(monkeypatch, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present here")
    monkeypatch.setattr(sys, "argv", ["dance-ext", "selftest", "--device", "cuda"])
    with pytest.raises(SystemExit) as exit_info:
        dance_ext.cli.run()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA device" in err and err.startswith("dance-ext: error:")


def test_missing_kernels_are_skips_unless_required(monkeypatch, capsys):
    # DANCE_EXT_DISABLE_KERNELS=all: every kernel row says "skipped: ..." and the run passes
    monkeypatch.setenv("DANCE_EXT_DISABLE_KERNELS", "all")
    report = dance_ext.selftest("cpu", quick=True)
    assert report.ok and report.rows
    assert all(r.status == "skipped" and r.note.startswith("skipped:") for r in report.rows)
    assert "skipped: kernel switched off by DANCE_EXT_DISABLE_KERNELS=all" in capsys.readouterr().out
    # ... and with DANCE_EXT_REQUIRE_KERNELS=1 the same rows fail
    monkeypatch.setenv("DANCE_EXT_REQUIRE_KERNELS", "1")
    report = dance_ext.selftest("cpu", quick=True, verbose=False)
    assert not report.ok and len(report.failures) == len(report.rows)
    assert all("DANCE_EXT_REQUIRE_KERNELS=1 but kernel switched off" in r.note for r in report.failures)


def test_worst_error_rule():
    worst = Worst(atol=1e-3, rtol=0.0)
    worst.add(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0005]), "close")
    assert worst.ratio == pytest.approx(0.5, rel=1e-3) and worst.outcome().worst_ratio <= 1
    worst.add(torch.tensor([float("nan")]), torch.tensor([1.0]), "nan")
    assert worst.ratio == float("inf") and "worst at nan" in worst.outcome().note
