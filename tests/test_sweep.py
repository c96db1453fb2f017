"""`dance-ext sweep`: accuracy against budget in resumable pieces, on digits at CI-sized budgets."""
import json

import pytest
from PIL import Image

from dance_ext.cli import main as cli_main, run as cli_run
from dance_ext.recipes import sweep

pytestmark = pytest.mark.usefixtures("single_thread")
TINY = ["--dataset", "digits", "--methods", "random", "dm", "dance", "--eval-runs", "2", "--eval-epochs", "3"]


def _rows(out, budget, seed):
    return json.loads((sweep.folder(out, budget, seed) / "results.json").read_text())["rows"]


def test_sweep_aggregates_seeds_and_budgets_and_resumes_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setenv("DANCE_EXT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    assert cli_main(["sweep", *TINY, "--ipc", "1", "--budgets", "0.002", "0.004", "--seeds", "0", "1",
                     "--out", str(out)]) == 0
    first = _rows(out, 0.002, 0)
    dm = next(r for r in first if r["method"] == "dm")
    assert dm["own"]["protocol"] == "dm" and dm["protocol"] == "dance" and len(dm["own"]["runs"]) == 2
    assert dm["official"] >= max(dm["best_mean"], 0)  # best over the checkpoints 0, mid, end

    # a report from before rows recorded their commit: its rows keep the report's, not the next piece's
    report_file = sweep.folder(out, 0.002, 0) / "results.json"
    old = json.loads(report_file.read_text())
    old["commit"] = "0ld"
    for row in old["rows"]:
        del row["commit"]
    report_file.write_text(json.dumps(old))
    # a later piece: another IPC into the same folders keeps every finished cell and its experts
    assert cli_main(["sweep", *TINY, "--ipc", "2", "--budgets", "0.002", "--seeds", "0", "1",
                     "--out", str(out)]) == 0
    again = _rows(out, 0.002, 0)
    assert [(r["method"], r["ipc"]) for r in again] == [(m, i) for i in (1, 2) for m in ("random", "dm", "dance")]
    assert [r for r in again if r["ipc"] == 1] == [{**r, "commit": "0ld"} for r in first]
    assert all(r["commit"] not in (None, "0ld") for r in again if r["ipc"] == 2)
    # --fresh redoes only the cells asked for
    assert cli_main(["sweep", *TINY, "--methods", "dm", "--ipc", "2", "--budgets", "0.002", "--seeds", "0",
                     "--fresh", "--out", str(out)]) == 0
    redone = _rows(out, 0.002, 0)
    assert [(r["method"], r["ipc"]) for r in redone] == [(r["method"], r["ipc"]) for r in again]
    assert [r for r in redone if r["method"] != "dm" or r["ipc"] != 2] == \
        [r for r in again if r["method"] != "dm" or r["ipc"] != 2]
    dm2 = [next(r for r in rows if (r["method"], r["ipc"]) == ("dm", 2)) for rows in (again, redone)]
    assert dm2[0]["wall_seconds"] != dm2[1]["wall_seconds"] and dm2[0]["runs"] == dm2[1]["runs"]  # same seed
    summary = json.loads((out / "sweep.json").read_text())
    # the second piece reused the stores: the pretraining time is still what they cost to make
    experts = json.loads((sweep.folder(out, 0.002, 0) / "results.json").read_text())["experts"]
    assert experts["reused"] and experts["seconds"] is None and experts["train_seconds"] > 0
    assert set(summary["expert_seconds"]) == {"0.002", "0.004"}
    cells = {(c["method"], c["ipc"], c["budget"]): c for c in summary["cells"]}
    assert set(cells) == {(m, 1, b) for m in ("random", "dm", "dance") for b in (0.002, 0.004)} | \
        {(m, 2, 0.002) for m in ("random", "dm", "dance")}
    cell = cells[("dm", 1, 0.002)]
    runs = [a for seed in (0, 1) for r in _rows(out, 0.002, seed) if (r["method"], r["ipc"]) == ("dm", 1)
            for a in r["runs"]]
    assert (cell["sets"], cell["networks"]) == (2, 4) and cell["mean"] == pytest.approx(sum(runs) / 4)
    assert cell["own_protocol"] == "dm" and cells[("dance", 1, 0.002)]["own_protocol"] == "dance"
    assert cells[("dm", 1, 0.004)]["iterations"] == 2 * cell["iterations"]
    table = (out / "sweep.md").read_text()
    assert "| dm | 1 | 0.002 | 2 × 2 |" in table and "official" in table and "| f |" in table
    assert cells[("dm", 1, 0.002)]["factor"] == 1
    with Image.open(out / "figures" / "accuracy_vs_budget.png") as figure:
        assert figure.format == "PNG" and figure.size[0] > figure.size[1]


def test_sweep_refuses_bad_budgets_and_seeds_before_any_work(tmp_path, capsys):
    for flags, message in ((["--budgets", "0"], "--budgets"), (["--budgets", "0.1", "--seeds", "-1"], "--seeds"),
                           (["--budgets", "0.1", "--eval-epochs", "0"], "--eval-epochs")):
        with pytest.raises(SystemExit):
            cli_run(["sweep", "--dataset", "digits", *flags, "--out", str(tmp_path / "s")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
