"""Reproduce a condensation table end to end: pretrain experts -> condense with every method
and IPC -> evaluate over several runs -> results.json, results.md and figures.

    dance-ext reproduce --dataset fashion-mnist --ipc 1 10 50 --methods random herding dm dance
    dance-ext reproduce --dataset fashion-mnist --ipc 1 10 --budget 0.03 --threads 1 --out runs/fm

Settings are the papers' (``preset="paper"``), shrunk by ``--budget`` (dance_ext/presets.py
says how). One expert store serves DANCE (middle encoders, calibration) and herding (its
feature space). Every set is evaluated with one protocol (default DANCE's, §3.11) so the
rows compare; ``--protocol paper`` uses each method's own instead, and ``--own-protocol``
evaluates every set with both (DM's rows then also compare with the DM paper). ``--curve-points K``
also evaluates DM and DANCE K times during condensation (by resuming from checkpoints),
for the accuracy-vs-iteration figure; each row's ``official`` is then what the official
DANCE code reports (best test accuracy over epochs and over condensation checkpoints).
``--cross-arch`` evaluates every final set on more architectures. Running into the same
folder again keeps the cells results.json already holds (same settings; ``--fresh`` redoes
the cells asked for), also those of IPCs and methods not asked for this time, and reuses
the experts. The folder holds:

    results.json   every row, the command, settings, budget, device, commit, wall times
    results.md     the table (ours beside DANCE Table 1 where it has the cell) and details
    sets/<method>_ipc<k>/           syn.pt, grid.png, metrics.json of each condensed set
    figures/grid_<method>_ipc<k>.png, losses_ipc<k>.png, accuracy_vs_iteration_ipc<k>.png
    experts/       the expert store (reused when the folder is run again)
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from .. import presets
from ..api import condense
from ..compare import CROSS_ARCHS, cross_arch
from ..data import as_class_data
from ..evaluate import evaluate
from ..experts import MANIFEST_FILE, ExpertPool, obtain_experts
from ..files import atomic_write
from ..progress import progress_bar, write
from ..provenance import device_name, git_commit
from ..results import CondenseResult
from ..utils import resolve_device
from .report import REPORT, markdown, read_report, set_folder, write_figures, write_json

NEEDS_EXPERTS = ("herding", "dance")
CURVE_METHODS = ("dm", "dance")
# what a kept cell must share with this run
SETTINGS = ("dataset", "budget", "protocol", "eval_runs", "eval_epochs", "eval_every", "seed", "curve_points",
            "curve_ipc", "curve_runs", "own_protocol")


def check(args) -> None:
    if not 0 < args.budget <= 1:
        raise ValueError(f"--budget: expected a number in (0, 1], got {args.budget}")
    for name in ("eval_runs", "curve_runs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    if args.curve_points < 0:
        raise ValueError(f"--curve-points: expected a non-negative int, got {args.curve_points}")
    if any(i < 1 for i in args.ipc):
        raise ValueError(f"--ipc: expected positive ints, got {args.ipc}")


class Recipe:
    def __init__(self, args):
        self.args = args
        self.device = resolve_device(args.device)
        self.out = Path(args.out)
        self.verbose = args.verbose
        self.train = as_class_data(args.dataset, split="train", root=args.root, device=self.device)
        self.test = as_class_data(args.dataset, split="test", root=args.root, device=self.device)
        self.dataset = self.train.name

    def config(self, method: str, ipc: int) -> presets.CondenseConfig:
        return presets.resolve(method, "paper", self.dataset, ipc, self.train.image_size,
                               {"budget": self.args.budget})

    def experts(self) -> tuple[ExpertPool, dict]:
        """The expert store for DANCE and herding: pretrained with the (scaled) paper settings,
        or reused from an earlier run into the same folder."""
        config = self.config("dance", self.args.ipc[0])
        store = self.out / "experts"
        started = time.perf_counter()
        reused = (store / MANIFEST_FILE).exists()
        try:
            pool = obtain_experts(store, self.train, num=config.pretrain_num, epochs=config.pretrain_epochs,
                                  batch_size=config.pretrain_batch, arch=config.arch, width=config.width,
                                  depth=config.depth, seed=self.args.seed, device=self.device,
                                  progress=self.verbose, test=self.test)
        except ValueError as exc:
            raise ValueError(f"--out: {exc}") from exc
        trained = pool.manifest.get("experts", [])
        # train_seconds: what the store cost to make, also when this run reused it
        info = {"path": str(store), "num": pool.num_experts, "epochs": config.pretrain_epochs,
                "batch": config.pretrain_batch, "network": pool.spec,
                "test_accuracy": [e.get("test_accuracy") for e in trained],
                "train_seconds": sum(e.get("train_seconds") or 0.0 for e in trained),
                "reused": reused, "seconds": None if reused else time.perf_counter() - started}
        return pool, info

    def evaluate(self, result, runs: int, protocol: str | None = None) -> dict:
        """``protocol`` None: the one of --protocol ("paper": the method's own)."""
        if protocol is None:
            protocol = result.meta["eval_protocol"] if self.args.protocol == "paper" else self.args.protocol
        per_class = result.meta["ipc"] * result.factor ** 2
        epochs = self.args.eval_epochs or presets.eval_epochs(protocol, self.dataset, per_class,
                                                              self.train.num_classes, self.args.budget)
        return evaluate(result, self.test, runs=runs, epochs=epochs, seed=self.args.seed, protocol=protocol,
                        width=result.meta["width"], device=self.device, eval_every=self.args.eval_every,
                        progress=self.verbose)

    def condense(self, method: str, ipc: int, pool, iterations=None, checkpoint_dir=None):
        return condense(self.train, ipc=ipc, method=method, experts=pool, preset="paper", budget=self.args.budget,
                        iterations=iterations, seed=self.args.seed, device=self.device,
                        checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None, progress=self.verbose)

    def curve(self, method: str, ipc: int, pool) -> tuple[object, list, float]:
        """Condense with accuracy checkpoints: (final result, curve points, their evaluation seconds)."""
        total = self.config(method, ipc).iterations
        points = sorted({round(total * k / self.args.curve_points) for k in range(1, self.args.curve_points)})
        checkpoints = self.out / "checkpoints" / f"{method}_ipc{ipc}"
        shutil.rmtree(checkpoints, ignore_errors=True)  # an earlier run's state would be past the first point
        curve, seconds = [], 0.0
        for iterations in [0, *points]:  # 0: the initial set
            partial = self.condense(method, ipc, pool, iterations, checkpoint_dir=checkpoints if iterations else None)
            scores = self.evaluate(partial, self.args.curve_runs)
            seconds += scores["seconds"]
            curve.append(curve_point(iterations, scores))
        return self.condense(method, ipc, pool, total, checkpoint_dir=checkpoints), curve, seconds

    def run_cell(self, method: str, ipc: int, pool) -> tuple[dict, object, list]:
        """Condense (with accuracy checkpoints when asked), evaluate, save: one table row."""
        started = time.perf_counter()
        curve, curve_seconds = [], 0.0
        if self.args.curve_points and method in CURVE_METHODS and ipc in (self.args.curve_ipc or self.args.ipc):
            result, curve, curve_seconds = self.curve(method, ipc, pool)
        else:
            result = self.condense(method, ipc, pool)
        condensed = time.perf_counter()
        scores = self.evaluate(result, self.args.eval_runs)
        result.evaluation = scores
        if curve:  # the final set's evaluation closes the curve
            curve.append(curve_point(result.meta["iterations"], scores))
        own = self.own_protocol(result, scores)
        folder = set_folder(self.out, method, ipc)
        result.save(folder)
        meta = result.meta
        row = {"dataset": self.dataset, "method": method, "ipc": ipc, "mean": scores["mean"], "std": scores["std"],
               "runs": scores["runs"], "best_mean": scores["best_mean"], "best_std": scores["best_std"],
               "protocol": scores["protocol"], "eval_epochs": scores["epochs"], "eval_width": meta["width"],
               "iterations": meta["iterations"], "lr_img": meta["lr_img"], "batch_real": meta["batch_real"],
               "factor": meta["factor"], "num_experts": meta["num_experts"] if method == "dance" else None,
               "budget": meta["budget"], "official": max(p["best_mean"] for p in curve or [scores]),
               "own": own, "condense_seconds": condensed - started - curve_seconds,
               "curve_eval_seconds": curve_seconds, "eval_seconds": scores["seconds"] + (own or {}).get("seconds", 0), "wall_seconds": time.perf_counter() - started,
               "set": str(folder)}
        return row, result, curve

    def own_protocol(self, result, scores: dict) -> dict | None:
        """With --own-protocol: the set under its method's own paper protocol (DM's for DM and
        the real subsets), evaluated again only where that differs from the common one."""
        if not self.args.own_protocol:
            return None
        own = result.meta["eval_protocol"]
        if own != scores["protocol"]:
            scores = self.evaluate(result, self.args.eval_runs, protocol=own)
        return {key: scores[key] for key in ("protocol", "epochs", "mean", "std", "runs", "best_mean", "seconds")}


def curve_point(iteration: int, scores: dict) -> dict:
    return {"iteration": iteration, "mean": scores["mean"], "std": scores["std"], "runs": scores["runs"],
            "best_mean": scores["best_mean"]}


def kept_cells(args, settings: dict) -> tuple[dict, dict, dict | None]:
    """The rows and curves of OUT/results.json to keep, by (method, ipc), and its experts' record:
    with --fresh, the rows of the cells not asked for; nothing without a report or, with --fresh,
    from one written with other settings (without --fresh that is an error)."""
    out = Path(args.out)
    if not (out / REPORT).exists():
        return {}, {}, None
    previous = read_report(out)
    if previous.get("settings") != settings:
        if args.fresh:
            return {}, {}, None
        raise ValueError(f"--out: {out / REPORT} was written with other settings ({previous.get('settings')} "
                         f"instead of {settings}); pass --fresh to redo its cells, or choose another --out")
    redo = {(m, ipc) for m in args.methods for ipc in args.ipc} if args.fresh else set()
    rows = {(r["method"], r["ipc"]): r for r in previous["rows"]
            if (r["method"], r["ipc"]) not in redo and (set_folder(out, r["method"], r["ipc"]) / "syn.pt").exists()}
    for row in rows.values():  # rows written before they recorded one: the report's, before this run replaces it
        row.setdefault("commit", previous.get("commit"))
    return rows, previous.get("curves", {}), previous.get("experts")


def run(args) -> int:
    check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    recipe = Recipe(args)
    out = recipe.out
    settings = {key: getattr(args, key) for key in SETTINGS}
    kept, kept_curves, kept_experts = kept_cells(args, settings)
    report = {"dataset": recipe.dataset, "command": args.command_line, "settings": settings,
              "budget": args.budget, "torch": torch.__version__, "commit": git_commit(),
              "device": f"{device_name(recipe.device)}, torch threads: {torch.get_num_threads()}",
              "protocol": args.protocol, "eval_runs": args.eval_runs,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": [], "curves": {}}
    pool = None
    if any(m in NEEDS_EXPERTS for m in args.methods):
        pool, report["experts"] = recipe.experts()
    elif kept_experts:  # a piece without DANCE or herding keeps what the store cost
        report["experts"] = kept_experts
    results, rows = {}, dict(kept)  # cells not asked for this time stay in the report
    curves = {label: c for label, c in kept_curves.items() if _cell(label) in kept}
    for ipc, method in progress_bar([(ipc, m) for ipc in args.ipc for m in args.methods], desc="reproduce",
                                    unit="set"):
        label = f"{method} ipc {ipc}"
        if (method, ipc) in kept:
            row, result = kept[(method, ipc)], CondenseResult.load(set_folder(out, method, ipc))
            curve = kept_curves.get(label, [])
        else:
            row, result, curve = recipe.run_cell(method, ipc, pool)
            row["commit"] = report["commit"]  # a kept row keeps the commit that made it
        rows[(method, ipc)] = row
        results[label] = result
        if curve:
            curves[label] = curve
        report["rows"] = sorted(rows.values(), key=lambda r: (r["ipc"], presets.METHODS.index(r["method"])))
        report["curves"] = curves
        report["wall_seconds"] = time.perf_counter() - started
        write_json(out / REPORT, report)  # partial results survive an interrupted run
        write(f"{label}: {row['mean']:.2f} ± {row['std']:.2f} % ({row['wall_seconds']:.0f} s"
              + (", kept)" if (method, ipc) in kept else ")"))
    write_figures(out, report)
    if args.cross_arch is not None:
        report["cross_arch"] = _cross_arch(recipe, results)
    report["wall_seconds"] = time.perf_counter() - started
    write_json(out / REPORT, report)
    text = markdown(report)
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(text))
    print(text)
    return 0


def _cell(label: str) -> tuple[str, int]:
    """"dm ipc 10" -> ("dm", 10)."""
    method, _, ipc = label.split(" ")
    return method, int(ipc)


def _cross_arch(recipe: Recipe, results: dict) -> list[dict]:
    """Every final set on more nets, with one protocol and epoch count ("paper" falls back to DANCE's)."""
    args = recipe.args
    protocol = "dance" if args.protocol == "paper" else args.protocol
    epochs = args.eval_epochs or presets.eval_epochs(protocol, recipe.dataset, max(args.ipc),
                                                     recipe.train.num_classes, args.budget)
    return cross_arch(results, recipe.test, args.cross_arch or CROSS_ARCHS, runs=args.eval_runs, epochs=epochs,
                      protocol=protocol, width=recipe.config("dm", args.ipc[0]).width, seed=args.seed,
                      device=recipe.device, progress=args.verbose)
