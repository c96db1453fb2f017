"""`dance-ext condense`: condense, evaluate, save. With no dataset: DANCE on the embedded
digits with the quick preset."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..presets import FIELDS, METHODS, PRESETS
from .common import DEFAULT_DATASET, QUICK_EVAL_EPOCHS, add_common, add_config, setting

HELP = "condense a dataset (default: digits, quick preset) and evaluate it"
CONFIG_FIELDS = FIELDS  # a config may set any CondenseConfig field


def add_arguments(p) -> None:
    p.add_argument("dataset", nargs="?", help="dataset name, folder, … (default: digits)")
    p.add_argument("--method", default="dance", choices=list(METHODS))
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int)
    p.add_argument("--budget", type=float, help="in (0, 1]: scale the preset down (iterations, epochs, width; "
                                                "recorded in meta; default 1)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="settings (default: quick for the embedded default dataset, else paper)")
    p.add_argument("--experts", help="expert store from `dance-ext pretrain` (DANCE; default: pretrain and cache)")
    p.add_argument("--out", default="out", help="output folder (syn.pt, grid.png, metrics.json)")
    p.add_argument("--eval-runs", type=int, default=3, help="evaluation runs (0: skip evaluation)")
    p.add_argument("--eval-epochs", type=int, help="evaluation epochs (default: the preset's, i.e. the "
                                                   f"protocol's, or {QUICK_EVAL_EPOCHS} with the quick preset, "
                                                   "× √budget)")
    p.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=VALUE",
                   help="override any CondenseConfig field, e.g. --set lr_img=0.05")
    p.add_argument("--checkpoint-dir", help="write the run state here (every --checkpoint-every iterations, "
                                            "at the end, and on SIGTERM/SIGINT)")
    p.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints (default: log_every)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --checkpoint-dir")
    p.add_argument("--distributed", action="store_true",
                   help="one process of `torchrun --nproc_per_node N -m dance_ext condense --distributed ...`: "
                        "ranks condense slices of the classes; rank 0 evaluates and writes")
    watch = p.add_argument_group("watching the run (every log_every iterations)")
    watch.add_argument("--log-file", metavar="FILE", help="append one line of losses per log interval")
    watch.add_argument("--tensorboard", metavar="DIR", help="TensorBoard events: losses, learning rate, image "
                                                            "grids (needs the `tensorboard` extra)")
    watch.add_argument("--tensorboard-images-every", type=int, default=100, metavar="K",
                       help="image grid to TensorBoard every K iterations (default 100; 0: none)")
    watch.add_argument("--save-grids-every", type=int, default=0, metavar="K",
                       help="write OUT/grids/grid_it<iteration>.png every K iterations (default 0: none)")
    add_config(p)
    add_common(p)


def handle(args) -> int:
    import dance_ext
    from ..files import check_output_dir
    from ..watch import Watchers

    progress = not args.no_progress
    dataset = args.dataset or DEFAULT_DATASET
    preset = args.preset or ("quick" if args.dataset is None else "paper")
    print(f"dance-ext: {args.method} on {dataset}, ipc {args.ipc}, preset {preset}", file=sys.stderr)
    check_output_dir(args.out, "out")  # before the work, not after it
    # the evaluation epochs are a setting (meta records them); --set wins over flags and config
    settings = {"iterations": args.iterations, "budget": args.budget, "eval_epochs": args.eval_epochs,
                **args.config_overrides, **dict(args.set)}
    rank0 = int(os.environ.get("RANK", "0")) == 0
    watchers = Watchers(args.ipc, log_file=args.log_file, tensorboard=args.tensorboard,
                        tensorboard_images_every=args.tensorboard_images_every, grids=Path(args.out) / "grids",
                        grids_every=args.save_grids_every) if rank0 else Watchers(args.ipc)
    with watchers as callback:
        result = dance_ext.condense(dataset, ipc=args.ipc, method=args.method, experts=args.experts, preset=preset,
                                    device=args.device, seed=args.seed, progress=progress, root=args.root,
                                    checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
                                    resume=args.resume, distributed=args.distributed, callback=callback, **settings)
    if args.distributed and not rank0:
        return 0  # every rank holds the gathered set; rank 0 evaluates and writes it
    if args.eval_runs > 0:
        # the preset's evaluation (quick: 300 epochs at width 32), scaled with the budget
        test = dance_ext.load_dataset(dataset, split="test", root=args.root)
        result.evaluation = dance_ext.evaluate(result, test, runs=args.eval_runs, epochs=result.meta["eval_epochs"],
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
