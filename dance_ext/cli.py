"""`dance-ext` / `python -m dance_ext`: condense, pretrain, evaluate, compare, info.

With no dataset, `dance-ext condense` condenses the embedded default (sklearn's digits,
offline) with the CPU-sized "quick" preset and evaluates the result."""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path

DEFAULT_DATASET = "digits"
# the quick preset's evaluation budget (the protocols' own: 1000/1500 epochs, width 128)
QUICK_EVAL_EPOCHS, QUICK_EVAL_WIDTH = 300, 32


def _setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set: expected KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", help="folder holding the dataset files (for names other than digits)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dance-ext", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("condense", help="condense a dataset (default: digits, quick preset) and evaluate it")
    p.add_argument("dataset", nargs="?", help="dataset name, folder, … (default: digits)")
    p.add_argument("--method", default="dance", choices=["random", "herding", "dm", "dance"])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int)
    p.add_argument("--budget", type=float, help="in (0, 1]: scale the preset down (iterations, epochs, width; "
                                                "recorded in meta; default 1)")
    p.add_argument("--preset", choices=["paper", "quick"],
                   help="settings (default: quick for the embedded default dataset, else paper)")
    p.add_argument("--experts", help="expert store from `dance-ext pretrain` (DANCE; default: pretrain and cache)")
    p.add_argument("--out", default="out", help="output folder (syn.pt, grid.png, metrics.json)")
    p.add_argument("--eval-runs", type=int, default=3, help="evaluation runs (0: skip evaluation)")
    p.add_argument("--eval-epochs", type=int, help="evaluation epochs (default: the preset's, i.e. the "
                                                   f"protocol's, or {QUICK_EVAL_EPOCHS} with the quick preset, "
                                                   "× √budget)")
    p.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="override any CondenseConfig field, e.g. --set lr_img=0.05")
    p.add_argument("--checkpoint-dir", help="write the run state here (every --checkpoint-every iterations, "
                                            "at the end, and on SIGTERM/SIGINT)")
    p.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints (default: log_every)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --checkpoint-dir")
    p.add_argument("--distributed", action="store_true",
                   help="one process of `torchrun --nproc_per_node N -m dance_ext condense --distributed ...`: "
                        "ranks condense slices of the classes; rank 0 evaluates and writes")
    _common(p)

    p = sub.add_parser("pretrain", help="pretrain DANCE experts")
    p.add_argument("dataset", nargs="?", default=DEFAULT_DATASET)
    p.add_argument("--num", type=int, default=5)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--out", default="experts")
    p.add_argument("--overwrite", action="store_true")
    _common(p)

    p = sub.add_parser("evaluate", help="train networks on a saved condensed set, test on real data")
    p.add_argument("result", help="folder written by `dance-ext condense`")
    p.add_argument("test", nargs="?", help="test dataset (default: the result's dataset)")
    p.add_argument("--arch", default="convnet")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int)
    p.add_argument("--protocol", choices=["dm", "dance"])
    _common(p)

    p = sub.add_parser("compare", help="random vs DM vs DANCE over seeds: a table of accuracies")
    p.add_argument("dataset", nargs="?", default=DEFAULT_DATASET)
    p.add_argument("--methods", nargs="+", default=["random", "dm", "dance"])
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 … n−1)")
    p.add_argument("--budget", type=float, help="in (0, 1]: scale the preset down (default 1)")
    p.add_argument("--preset", choices=["paper", "quick"], default="quick")
    p.add_argument("--eval-epochs", type=int, default=QUICK_EVAL_EPOCHS)
    p.add_argument("--eval-width", type=int, default=QUICK_EVAL_WIDTH, help="evaluation ConvNet width")
    p.add_argument("--protocol", choices=["dm", "dance"], default="dance")
    p.add_argument("--json", help="also write the rows to this JSON file")
    _common(p)

    sub.add_parser("info", help="build facts: compiled ops, CUDA, OpenMP threads")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import dance_ext  # after parsing, so --help stays instant

    progress = not getattr(args, "no_progress", False)
    if args.command == "info":
        print(json.dumps({"version": dance_ext.__version__, **dance_ext.build_info()}, indent=2))
        return 0

    if args.command == "condense":
        dataset = args.dataset or DEFAULT_DATASET
        preset = args.preset or ("quick" if args.dataset is None else "paper")
        print(f"dance-ext: {args.method} on {dataset}, ipc {args.ipc}, preset {preset}", file=sys.stderr)
        from .files import check_output_dir
        check_output_dir(args.out, "out")  # before the work, not after it
        result = dance_ext.condense(dataset, ipc=args.ipc, method=args.method, experts=args.experts,
                                    iterations=args.iterations, preset=preset, device=args.device, seed=args.seed,
                                    progress=progress, root=args.root, budget=args.budget,
                                    checkpoint_dir=args.checkpoint_dir,
                                    checkpoint_every=args.checkpoint_every, resume=args.resume,
                                    distributed=args.distributed, **dict(args.set))
        if args.distributed and int(os.environ.get("RANK", "0")) != 0:
            return 0  # every rank holds the gathered set; rank 0 evaluates and writes it
        if args.eval_runs > 0:
            # the preset's evaluation (quick: 300 epochs at width 32), scaled with the budget
            epochs = args.eval_epochs or result.meta["eval_epochs"]
            test = dance_ext.load_dataset(dataset, split="test", root=args.root)
            result.evaluation = dance_ext.evaluate(result, test, runs=args.eval_runs, epochs=epochs,
                                                   width=result.meta["width"], seed=args.seed,
                                                   device=args.device, progress=progress)
        out = result.save(args.out)
        print(f"wrote {out / 'syn.pt'}, {out / 'grid.png'}, {out / 'metrics.json'} "
              f"({result.meta['seconds']:.1f} s condensation)")
        if result.evaluation:
            e = result.evaluation
            print(f"test accuracy ({e['protocol']} protocol, {len(e['runs'])} runs, last epoch): "
                  f"{e['mean']:.2f} ± {e['std']:.2f} %  (best epoch, optimistic: {e['best_mean']:.2f} %)")
        return 0

    if args.command == "pretrain":
        train = dance_ext.load_dataset(args.dataset, split="train", root=args.root)
        test = dance_ext.load_dataset(args.dataset, split="test", root=args.root)
        pool = dance_ext.pretrain_experts(train, num=args.num, epochs=args.epochs, out=args.out, test=test,
                                          width=args.width, seed=args.seed, device=args.device,
                                          progress=progress, overwrite=args.overwrite)
        print(f"wrote {pool.num_experts} experts to {args.out}")
        return 0

    if args.command == "evaluate":
        result = dance_ext.load(args.result)
        test = dance_ext.load_dataset(args.test or result.meta["dataset"], split="test", root=args.root)
        scores = dance_ext.evaluate(result, test, arch=args.arch, runs=args.runs, epochs=args.epochs,
                                    seed=args.seed, protocol=args.protocol, device=args.device,
                                    progress=progress)
        print(json.dumps(scores, indent=2))
        return 0

    if args.command == "compare":
        from .compare import compare, markdown_table
        rows = compare(args.dataset, args.dataset, methods=args.methods, ipcs=args.ipc,
                       seeds=range(args.seeds), preset=args.preset, protocol=args.protocol,
                       eval_epochs=args.eval_epochs, eval_width=args.eval_width, device=args.device,
                       progress=progress, root=args.root, budget=args.budget)
        print(markdown_table(rows))
        if args.json:
            from .files import atomic_write
            text = json.dumps(rows, indent=2)
            atomic_write(Path(args.json), lambda tmp: Path(tmp).write_text(text))
        return 0
    return 2


def run() -> None:
    """Console entry: bad input ends with its message and exit code 2, not a traceback."""
    try:
        sys.exit(main())
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"dance-ext: error: {message}", file=sys.stderr)
        sys.exit(2)
