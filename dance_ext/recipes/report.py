"""What `dance-ext reproduce` leaves in its output folder besides the sets: results.json
(the report), results.md (the table) and figures/, each drawn from the folder alone so that
`dance-ext figures` redraws them."""
from __future__ import annotations

import json
from pathlib import Path

from ..compare import cross_arch_table, paper_table
from ..files import atomic_write

REPORT = "results.json"


def write_json(path: Path, payload) -> None:
    text = json.dumps(payload, indent=2, default=str)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_report(folder) -> dict:
    """OUT/results.json; a one-line error when there is none or it is unreadable."""
    path = Path(folder) / REPORT
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"results_dir: no {REPORT} in {str(folder)!r} (a `dance-ext reproduce` "
                                "output folder holds one)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"results_dir: {path} is unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(report, dict) or not isinstance(report.get("rows"), list):
        raise ValueError(f"results_dir: {path} is not a `dance-ext reproduce` report (no 'rows' list)")
    return report


def set_folder(out, method: str, ipc: int) -> Path:
    return Path(out) / "sets" / f"{method}_ipc{ipc}"


def write_figures(out, report: dict) -> list[Path]:
    """Class × IPC grids of every set, loss curves per IPC (DM, DANCE) and accuracy during
    condensation per IPC (with --curve-points), under OUT/figures."""
    from .. import figures
    from ..results import CondenseResult

    out, written = Path(out), []
    histories: dict[int, dict] = {}
    for row in report["rows"]:
        method, ipc = row["method"], row["ipc"]
        result = CondenseResult.load(set_folder(out, method, ipc))
        written.append(figures.condensed_grid(result, out / "figures" / f"grid_{method}_ipc{ipc}.png"))
        if result.history:
            histories.setdefault(ipc, {})[method] = result.history
    for ipc, runs in histories.items():
        written.append(figures.loss_curves(runs, out / "figures" / f"losses_ipc{ipc}.png"))
    for ipc in dict.fromkeys(row["ipc"] for row in report["rows"]):
        curves = {label.split(" ipc")[0]: points for label, points in report.get("curves", {}).items()
                  if label.endswith(f" ipc {ipc}")}
        if curves:
            written.append(figures.accuracy_curves(curves, out / "figures" / f"accuracy_vs_iteration_ipc{ipc}.png"))
    return written


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [f"# {report['dataset']}: " + ", ".join(dict.fromkeys(r["method"] for r in rows)), "",
             f"- command: `{report['command']}`",
             f"- budget: {report['budget']} (dance_ext/presets.py); device: {report['device']}; "
             f"torch {report['torch']}; commit: {report['commit']}",
             f"- wall time: {report['wall_seconds'] / 60:.1f} min in all; experts: "
             + (f"{report['experts']['num']} × {report['experts']['epochs']} epochs"
                if report.get("experts") else "none"),
             f"- evaluation: {report['eval_runs']} networks per set, protocol `{report['protocol']}`, "
             "last-epoch test accuracy (%), mean ± std", "",
             "Paper columns: DANCE Table 1 (IJCAI'24), full budget on GPU, for comparison only.", "",
             paper_table(rows, report["dataset"]), "",
             "`official` is what the official DANCE code reports: the best test accuracy over the "
             "evaluation's epochs and over the condensation checkpoints (with --curve-points); it "
             "selects on the test set. `own protocol`: the set under its method's paper protocol.", "",
             "| method | ipc | ours (last) | best epoch | official | own protocol | runs | protocol, epochs | "
             "iterations | lr_img | condense s | eval s | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = ", ".join(f"{a:.1f}" for a in r["runs"])
        lr = f"{r['lr_img']:g}" if r["iterations"] else "–"  # real subsets are not optimised
        own = r.get("own")
        own = f"{own['mean']:.2f} ± {own['std']:.2f} ({own['protocol']})" if own else "–"
        official = f"{r['official']:.2f}" if r.get("official") is not None else "–"  # reports before the column
        lines.append(f"| {r['method']} | {r['ipc']} | {r['mean']:.2f} ± {r['std']:.2f} | {r['best_mean']:.2f} | "
                     f"{official} | {own} | {runs} | {r['protocol']}, {r['eval_epochs']} | {r['iterations']} | {lr} | "
                     f"{r['condense_seconds']:.0f} | {r['eval_seconds']:.0f} | {r['wall_seconds']:.0f} |")
    if report.get("curves"):
        lines += ["", "Accuracy during condensation (mean over curve runs; these evaluations count in wall s, "
                  "not in condense s):", ""]
        for label, points in report["curves"].items():
            lines.append(f"- {label}: " + ", ".join(f"it {p['iteration']}: {p['mean']:.1f}" for p in points))
    if report.get("cross_arch"):
        lines += ["", "Cross-architecture (last-epoch accuracy, %):", "", cross_arch_table(report["cross_arch"])]
    return "\n".join(lines) + "\n"
