"""Reproduce a condensation table end to end: pretrain experts -> condense with every method
and IPC -> evaluate over several runs -> results.json, results.md and figures.

    python python/reproduce.py --dataset fashion-mnist --ipc 1 10 50 --methods random herding dm dance
    python python/reproduce.py --dataset fashion-mnist --ipc 1 10 --budget 0.03 --threads 1 --out runs/fm

Settings are the papers' (``preset="paper"``), shrunk by ``--budget`` (dance_ext/presets.py
says how). One expert store serves DANCE (middle encoders, calibration) and herding (its
feature space). Every set is evaluated with one protocol (default DANCE's, §3.11) so the
rows compare; ``--protocol paper`` uses each method's own instead. ``--curve-points K``
also evaluates DM and DANCE K times during condensation (by resuming from checkpoints),
for the accuracy-vs-iteration figure. ``--cross-arch`` evaluates every final set on more
architectures. The output folder holds:

    results.json   every row, the command, budget, device, commit, wall times
    results.md     the table (ours beside DANCE Table 1 where it has the cell) and details
    sets/<method>_ipc<k>/           syn.pt, grid.png, metrics.json of each condensed set
    figures/grid_<method>_ipc<k>.png, losses_ipc<k>.png, accuracy_vs_iteration_ipc<k>.png
    experts/       the expert store (reused when the folder is run again)
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import dance_ext
from dance_ext import figures, presets
from dance_ext.files import atomic_write
from dance_ext.provenance import device_name, git_commit
from dance_ext.compare import CROSS_ARCHS, cross_arch, cross_arch_table, paper_table
from dance_ext.experts import MANIFEST_FILE, ExpertPool, obtain_experts
from dance_ext.utils import resolve_device

NEEDS_EXPERTS = ("herding", "dance")
CURVE_METHODS = ("dm", "dance")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (see dance_ext.load_dataset)")
    p.add_argument("--root", help="folder holding the dataset files")
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--methods", nargs="+", default=["random", "herding", "dm", "dance"],
                   choices=list(presets.METHODS))
    p.add_argument("--budget", type=float, default=1.0, help="in (0, 1]; 1 = the papers' settings")
    p.add_argument("--eval-runs", type=int, default=3, help="networks trained per condensed set")
    p.add_argument("--protocol", default="dance", choices=["dance", "dm", "paper"],
                   help="evaluation of every set (paper: each method's own)")
    p.add_argument("--eval-epochs", type=int, help="default: the protocol's epochs × √budget")
    p.add_argument("--eval-every", type=int, help="test checkpoints for best-epoch accuracy (default: protocol's)")
    p.add_argument("--curve-points", type=int, default=0,
                   help="evaluations during DM/DANCE condensation, besides the initial set (0: none)")
    p.add_argument("--curve-ipc", type=int, nargs="+", help="IPCs that get accuracy curves (default: all)")
    p.add_argument("--curve-runs", type=int, default=1, help="networks per curve point")
    p.add_argument("--cross-arch", nargs="*", metavar="ARCH",
                   help="also evaluate every final set on these nets (no names: convnet alexnet vgg11 resnet18)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, … (default: cuda if available)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default="runs/reproduce", help="output folder")
    p.add_argument("--verbose", action="store_true", help="inner progress bars too")
    return p


def _check(args) -> None:
    if not 0 < args.budget <= 1:
        raise SystemExit(f"--budget: expected a number in (0, 1], got {args.budget}")
    for name in ("eval_runs", "curve_runs"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    if args.curve_points < 0:
        raise SystemExit(f"--curve-points: expected a non-negative int, got {args.curve_points}")
    if any(i < 1 for i in args.ipc):
        raise SystemExit(f"--ipc: expected positive ints, got {args.ipc}")


def _write_json(path: Path, payload) -> None:
    text = json.dumps(payload, indent=2, default=str)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


class Recipe:
    def __init__(self, args):
        self.args = args
        self.device = resolve_device(args.device)
        self.out = Path(args.out)
        self.verbose = args.verbose
        self.train = dance_ext.as_class_data(args.dataset, split="train", root=args.root, device=self.device)
        self.test = dance_ext.as_class_data(args.dataset, split="test", root=args.root, device=self.device)
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
            raise SystemExit(f"--out: {exc}") from exc
        accuracies = [e.get("test_accuracy") for e in pool.manifest.get("experts", [])]
        info = {"path": str(store), "num": pool.num_experts, "epochs": config.pretrain_epochs,
                "batch": config.pretrain_batch, "network": pool.spec, "test_accuracy": accuracies,
                "reused": reused, "seconds": None if reused else time.perf_counter() - started}
        return pool, info

    def evaluate(self, result, runs: int) -> dict:
        config_protocol = result.meta["eval_protocol"]
        protocol = config_protocol if self.args.protocol == "paper" else self.args.protocol
        per_class = result.meta["ipc"] * result.factor ** 2
        epochs = self.args.eval_epochs or presets.eval_epochs(protocol, self.dataset, per_class,
                                                              self.train.num_classes, self.args.budget)
        return dance_ext.evaluate(result, self.test, runs=runs, epochs=epochs, seed=self.args.seed,
                                  protocol=protocol, width=result.meta["width"], device=self.device,
                                  eval_every=self.args.eval_every, progress=self.verbose)

    def condense(self, method: str, ipc: int, pool, iterations=None, checkpoint_dir=None):
        return dance_ext.condense(self.train, ipc=ipc, method=method, experts=pool, preset="paper",
                                  budget=self.args.budget, iterations=iterations, seed=self.args.seed,
                                  device=self.device, checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None,
                                  progress=self.verbose)

    def run_cell(self, method: str, ipc: int, pool) -> tuple[dict, object, list]:
        """Condense (with accuracy checkpoints when asked), evaluate, save: one table row."""
        started = time.perf_counter()
        curve, curve_seconds = [], 0.0
        curve_ipcs = self.args.curve_ipc or self.args.ipc
        if self.args.curve_points and method in CURVE_METHODS and ipc in curve_ipcs:
            total = self.config(method, ipc).iterations
            points = sorted({round(total * k / self.args.curve_points) for k in range(1, self.args.curve_points)})
            checkpoints = self.out / "checkpoints" / f"{method}_ipc{ipc}"
            shutil.rmtree(checkpoints, ignore_errors=True)  # an earlier run's state would be past the first point
            for iterations in [0, *points]:  # 0: the initial set
                partial = self.condense(method, ipc, pool, iterations,
                                        checkpoint_dir=checkpoints if iterations else None)
                scores = self.evaluate(partial, self.args.curve_runs)
                curve_seconds += scores["seconds"]
                curve.append({"iteration": iterations, "mean": scores["mean"], "std": scores["std"],
                              "runs": scores["runs"]})
            result = self.condense(method, ipc, pool, total, checkpoint_dir=checkpoints)
        else:
            result = self.condense(method, ipc, pool)
        condensed = time.perf_counter()
        scores = self.evaluate(result, self.args.eval_runs)
        result.evaluation = scores
        if curve:  # the final set's evaluation closes the curve
            curve.append({"iteration": result.meta["iterations"], "mean": scores["mean"], "std": scores["std"],
                          "runs": scores["runs"]})
        name = f"{method}_ipc{ipc}"
        result.save(self.out / "sets" / name)
        figures.condensed_grid(result, self.out / "figures" / f"grid_{name}.png")
        meta = result.meta
        row = {"dataset": self.dataset, "method": method, "ipc": ipc, "mean": scores["mean"], "std": scores["std"],
               "runs": scores["runs"], "best_mean": scores["best_mean"], "best_std": scores["best_std"],
               "protocol": scores["protocol"], "eval_epochs": scores["epochs"], "eval_width": meta["width"],
               "iterations": meta["iterations"], "lr_img": meta["lr_img"], "batch_real": meta["batch_real"],
               "factor": meta["factor"], "num_experts": meta["num_experts"] if method == "dance" else None,
               "budget": meta["budget"], "condense_seconds": condensed - started - curve_seconds,
               "curve_eval_seconds": curve_seconds,
               "eval_seconds": scores["seconds"], "wall_seconds": time.perf_counter() - started,
               "set": str(self.out / "sets" / name)}
        return row, result, curve


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
             "| method | ipc | ours (last) | best epoch | runs | protocol, epochs | iterations | lr_img | "
             "condense s | eval s | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = ", ".join(f"{a:.1f}" for a in r["runs"])
        lr = f"{r['lr_img']:g}" if r["iterations"] else "–"  # real subsets are not optimised
        lines.append(f"| {r['method']} | {r['ipc']} | {r['mean']:.2f} ± {r['std']:.2f} | {r['best_mean']:.2f} | "
                     f"{runs} | {r['protocol']}, {r['eval_epochs']} | {r['iterations']} | {lr} | "
                     f"{r['condense_seconds']:.0f} | {r['eval_seconds']:.0f} | {r['wall_seconds']:.0f} |")
    if report.get("curves"):
        lines += ["", "Accuracy during condensation (mean over curve runs; these evaluations count in wall s, "
                  "not in condense s):", ""]
        for label, points in report["curves"].items():
            lines.append(f"- {label}: " + ", ".join(f"it {p['iteration']}: {p['mean']:.1f}" for p in points))
    if report.get("cross_arch"):
        lines += ["", "Cross-architecture (last-epoch accuracy, %):", "", cross_arch_table(report["cross_arch"])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    recipe = Recipe(args)
    out = recipe.out
    report = {"dataset": recipe.dataset, "command": shlex.join([sys.executable, *sys.argv]) if argv is None
              else shlex.join(["python", "python/reproduce.py", *argv]),
              "budget": args.budget, "torch": torch.__version__, "commit": git_commit(),
              "device": f"{device_name(recipe.device)}, torch threads: {torch.get_num_threads()}", "protocol": args.protocol, "eval_runs": args.eval_runs,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": [], "curves": {}}
    pool = None
    if any(m in NEEDS_EXPERTS for m in args.methods):
        pool, report["experts"] = recipe.experts()
    results, histories = {}, {}
    cells = [(ipc, m) for ipc in args.ipc for m in args.methods]
    for ipc, method in tqdm(cells, desc="reproduce", unit="set"):
        row, result, curve = recipe.run_cell(method, ipc, pool)
        report["rows"].append(row)
        results[f"{method} ipc {ipc}"] = result
        if result.history:
            histories.setdefault(ipc, {})[method] = result.history
        if curve:
            report["curves"][f"{method} ipc {ipc}"] = curve
        report["wall_seconds"] = time.perf_counter() - started
        _write_json(out / "results.json", report)  # partial results survive an interrupted run
        tqdm.write(f"{method} ipc {ipc}: {row['mean']:.2f} ± {row['std']:.2f} % ({row['wall_seconds']:.0f} s)")
    for ipc, runs in histories.items():
        figures.loss_curves(runs, out / "figures" / f"losses_ipc{ipc}.png")
    for ipc in args.ipc:
        curves = {label.split(" ipc")[0]: c for label, c in report["curves"].items() if label.endswith(f"ipc {ipc}")}
        if curves:
            figures.accuracy_curves(curves, out / "figures" / f"accuracy_vs_iteration_ipc{ipc}.png")
    if args.cross_arch is not None:
        # one protocol and epoch count for every (set, net); "paper" falls back to DANCE's
        protocol = "dance" if args.protocol == "paper" else args.protocol
        epochs = args.eval_epochs or presets.eval_epochs(protocol, recipe.dataset, max(args.ipc),
                                                         recipe.train.num_classes, args.budget)
        report["cross_arch"] = cross_arch(results, recipe.test, args.cross_arch or CROSS_ARCHS,
                                          runs=args.eval_runs, epochs=epochs, protocol=protocol,
                                          width=recipe.config("dm", args.ipc[0]).width, seed=args.seed,
                                          device=recipe.device, progress=args.verbose)
    report["wall_seconds"] = time.perf_counter() - started
    _write_json(out / "results.json", report)
    text = markdown(report)
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(text))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
