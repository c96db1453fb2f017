"""Accuracy against budget: `reproduce` at several budgets and seeds, then one table and one
figure over all of them.

    dance-ext sweep --dataset fashion-mnist --ipc 1 10 --budgets 0.01 0.03 0.1 --seeds 0 1 --out runs/sweep
    dance-ext sweep --dataset fashion-mnist --ipc 50 --budgets 0.01 0.03 --seeds 0 1 --out runs/sweep

Every (budget, seed) pair is a `reproduce` folder, OUT/b<budget>/seed<seed>: running again
keeps its finished cells (IPCs and methods of earlier pieces included) and its expert store,
so a long sweep runs in pieces. Each set is evaluated with one common protocol and with its
method's own paper protocol, and with two accuracy checkpoints during condensation, so every
cell also has the number the official DANCE code reports (best epoch, best checkpoint).
OUT/sweep.json and sweep.md aggregate every folder present (mean ± std over all networks of
all seeds, so the std covers set-to-set variation); OUT/figures/accuracy_vs_budget.png draws
it beside the papers' numbers.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..compare import paper_accuracy
from ..files import atomic_write
from ..presets import METHODS
from . import reproduce
from .report import REPORT, write_json

SWEEP = "sweep.json"
CURVE_POINTS = 2  # the initial set, the midpoint and the end: DANCE's "best checkpoint" has a choice


def folder(out, budget: float, seed: int) -> Path:
    return Path(out) / f"b{budget:g}" / f"seed{seed}"


def check(args) -> None:
    if not args.budgets or any(not 0 < b <= 1 for b in args.budgets):
        raise ValueError(f"--budgets: expected numbers in (0, 1], got {args.budgets}")
    if args.eval_epochs is not None and args.eval_epochs < 1:
        raise ValueError(f"--eval-epochs: expected a positive int, got {args.eval_epochs}")
    if not args.seeds or any(s < 0 for s in args.seeds):
        raise ValueError(f"--seeds: expected non-negative ints, got {args.seeds}")


def piece_args(args, budget: float, seed: int) -> argparse.Namespace:
    """The `reproduce` run of one (budget, seed) pair."""
    return argparse.Namespace(
        dataset=args.dataset, root=args.root, ipc=args.ipc, methods=args.methods, budget=budget,
        eval_runs=args.eval_runs, protocol=args.protocol, own_protocol=True, eval_epochs=args.eval_epochs, eval_every=None,
        curve_points=CURVE_POINTS, curve_ipc=None, curve_runs=1, cross_arch=None, seed=seed,
        device=args.device, threads=args.threads, out=str(folder(args.out, budget, seed)), fresh=args.fresh,
        verbose=args.verbose, command_line=f"{args.command_line}  # piece: budget {budget:g}, seed {seed}")


def run(args) -> int:
    check(args)
    for budget in args.budgets:
        for seed in args.seeds:
            reproduce.run(piece_args(args, budget, seed))
    summary = aggregate(args.out)
    write_json(Path(args.out) / SWEEP, summary)
    from ..figures import accuracy_vs_budget

    accuracy_vs_budget(summary["cells"], Path(args.out) / "figures" / "accuracy_vs_budget.png")
    text = markdown(summary)
    atomic_write(Path(args.out) / "sweep.md", lambda tmp: Path(tmp).write_text(text))
    print(text)
    return 0


def _stats(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))  # population std, as evaluate's


def aggregate(out) -> dict:
    """One cell per (method, ipc, budget) over every OUT/b*/seed*/results.json."""
    reports = [json.loads(p.read_text()) for p in sorted(Path(out).glob(f"b*/seed*/{REPORT}"))]
    groups: dict[tuple, list[dict]] = {}
    experts: dict[float, list[float]] = {}
    for report in reports:
        for row in report["rows"]:
            groups.setdefault((row["method"], row["ipc"], row["budget"]), []).append(row)
        info = report.get("experts") or {}
        seconds = info.get("train_seconds") or info.get("seconds")  # reports before train_seconds: only when made
        if seconds is not None:
            experts.setdefault(report["budget"], []).append(seconds)
    cells = [_cell(key, rows) for key, rows in groups.items()]
    cells.sort(key=lambda c: (c["ipc"], METHODS.index(c["method"]), c["budget"]))
    return {"dataset": reports[0]["dataset"] if reports else None, "cells": cells,
            "expert_seconds": {f"{b:g}": float(np.mean(s)) for b, s in sorted(experts.items())},
            "pieces": [{"budget": r["budget"], "seed": r["settings"]["seed"],
                        "commit": ", ".join(sorted({row.get("commit", r["commit"]) for row in r["rows"]})),
                        "device": r["device"], "torch": r["torch"], "started": r["started"]} for r in reports]}


def _cell(key: tuple, rows: list[dict]) -> dict:
    method, ipc, budget = key
    runs = [a for r in rows for a in r["runs"]]
    mean, std = _stats(runs)
    own_runs = [a for r in rows if r.get("own") for a in r["own"]["runs"]]
    own_mean, own_std = _stats(own_runs) if own_runs else (None, None)
    officials = [r["official"] for r in rows if r.get("official") is not None]
    return {"method": method, "ipc": ipc, "budget": budget, "sets": len(rows), "networks": len(runs),
            "mean": mean, "std": std, "set_means": [r["mean"] for r in rows],
            "own_protocol": rows[0]["own"]["protocol"] if own_runs else None, "own_mean": own_mean, "own_std": own_std,
            "official": float(np.mean(officials)) if officials else None,
            "paper": paper_accuracy(rows[0]["dataset"], method, ipc),
            "iterations": rows[0]["iterations"], "lr_img": rows[0]["lr_img"], "factor": rows[0]["factor"],
            "condense_seconds": float(np.mean([r["condense_seconds"] for r in rows])),
            "eval_seconds": float(np.mean([r["eval_seconds"] for r in rows])),
            "wall_seconds": float(np.mean([r["wall_seconds"] for r in rows]))}


def markdown(summary: dict) -> str:
    lines = [f"# {summary['dataset']}: accuracy against budget", "",
             "Mean ± std over every evaluation network of every condensed set (seeds) of a cell; "
             "`own protocol`: each set under its method's paper protocol; `official`: best test accuracy "
             "over epochs and condensation checkpoints, as the official DANCE code reports it (mean over sets; "
             "selects on the test set); `paper`: DANCE Table 1 at full budget on a GPU; `f`: the multi-formation "
             "factor (1: full-resolution images). Seconds are per set "
             "(expert pretraining apart).", "",
             "| method | ipc | budget | sets × nets | ours (common) | own protocol | official | paper | "
             "iterations | lr_img | f | condense s | eval s | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        own = f"{c['own_mean']:.1f} ± {c['own_std']:.1f} ({c['own_protocol']})" if c["own_mean"] is not None else "–"
        official = "–" if c["official"] is None else f"{c['official']:.1f}"
        paper = "–" if c["paper"] is None else f"{c['paper']:.1f}"
        lr, factor = (f"{c['lr_img']:g}", c["factor"]) if c["iterations"] else ("–", "–")
        lines.append(f"| {c['method']} | {c['ipc']} | {c['budget']:g} | {c['sets']} × {c['networks'] // c['sets']} | "
                     f"{c['mean']:.1f} ± {c['std']:.1f} | {own} | {official} | {paper} | {c['iterations']} | {lr} | "
                     f"{factor} | "
                     f"{c['condense_seconds']:.0f} | {c['eval_seconds']:.0f} | {c['wall_seconds']:.0f} |")
    experts = ", ".join(f"budget {b}: {s:.0f} s" for b, s in summary["expert_seconds"].items())
    lines += ["", f"Expert pretraining per seed: {experts or 'none'}.", "",
              "Pieces: " + "; ".join(f"b{p['budget']:g}/seed{p['seed']} ({p['commit']}, {p['device']})"
                                      for p in summary["pieces"])]
    return "\n".join(lines) + "\n"
