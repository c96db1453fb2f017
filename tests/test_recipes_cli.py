"""The recipes as commands: `dance-ext reproduce` keeps the cells of an earlier run into the
same folder (--fresh redoes them), `dance-ext figures` redraws from the folder, `dance-ext
cross-arch` and python/cross_arch.py evaluate saved sets, and the recipes take --config."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

from dance_ext import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--methods", "random", "dm", "--budget", "0.005", "--eval-runs", "1",
        "--eval-epochs", "2"]

pytestmark = pytest.mark.usefixtures("single_thread")


def _rows(out: Path) -> list:
    return json.loads((out / "results.json").read_text())["rows"]


def _stamps(out: Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "sets").glob("*/syn.pt")}


def test_reproduce_keeps_done_cells_and_fresh_redoes_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["reproduce", *TINY, "--ipc", "1", "--out", str(out)]) == 0
    first, stamps = _rows(out), _stamps(out)
    assert sorted(stamps) == ["dm_ipc1", "random_ipc1"]
    capsys.readouterr()
    assert cli.main(["reproduce", *TINY, "--ipc", "1", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"random ipc 1: .*, kept\)", err) and not re.search(r"random ipc 2: .*, kept\)", err), err
    assert _rows(out)[:2] == first
    assert {k: v for k, v in _stamps(out).items() if k.endswith("ipc1")} == stamps  # not redone
    assert [(r["method"], r["ipc"]) for r in _rows(out)] == [("random", 1), ("dm", 1), ("random", 2), ("dm", 2)]
    assert cli.main(["reproduce", *TINY, "--ipc", "1", "--out", str(out), "--fresh"]) == 0
    assert all(_stamps(out)[name] != stamp for name, stamp in stamps.items())
    with pytest.raises(ValueError, match="written with other settings.*--fresh"):
        cli.main(["reproduce", *TINY[:-1], "3", "--ipc", "1", "--out", str(out)])


def test_figures_are_redrawn_from_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["reproduce", *TINY, "--ipc", "1", "--out", str(out)]) == 0
    drawn = sorted(p.name for p in (out / "figures").iterdir())
    assert drawn == ["grid_dm_ipc1.png", "grid_random_ipc1.png", "losses_ipc1.png"]
    for figure in (out / "figures").iterdir():
        figure.unlink()
    capsys.readouterr()
    assert cli.main(["figures", str(out)]) == 0
    assert sorted(p.name for p in (out / "figures").iterdir()) == drawn
    assert len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(FileNotFoundError, match="results_dir: no results.json"):
        cli.main(["figures", str(tmp_path)])


def test_cross_arch_command_script_and_config(tmp_path, capsys):
    out = tmp_path / "run"
    (tmp_path / "recipe.yaml").write_text("dataset: digits\nmethods: [random]\nipc: [1]\nbudget: 0.005\n"
                                          "eval_runs: 1\neval_epochs: 2\n")
    assert cli.main(["reproduce", "--config", str(tmp_path / "recipe.yaml"), "--out", str(out)]) == 0
    assert [(r["method"], r["ipc"], r["eval_epochs"]) for r in _rows(out)] == [("random", 1, 2)]
    capsys.readouterr()
    assert cli.main(["cross-arch", str(out / "sets" / "random_ipc1"), "--archs", "mlp", "--runs", "1",
                     "--epochs", "1", "--out", str(tmp_path / "xa")]) == 0
    assert "| set | mlp |" in capsys.readouterr().out
    assert json.loads((tmp_path / "xa.json").read_text())[0]["arch"] == "mlp"
    spec = importlib.util.spec_from_file_location("cross_arch", ROOT / "python" / "cross_arch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(out / "sets" / "random_ipc1"), "--archs", "mlp", "--runs", "1", "--epochs", "1"]) == 0
