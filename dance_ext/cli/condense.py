"""`dance-ext condense`: condense, evaluate, save. With no dataset: DANCE on the embedded
digits with the quick preset."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from ..presets import FIELDS, METHODS, PRESETS
from .common import (
    DEFAULT_DATASET,
    QUICK_EVAL_EPOCHS,
    add_common,
    add_config,
    count,
    fraction,
    setting,
)

HELP = "condense a dataset (default: digits, quick preset) and evaluate it"
CONFIG_FIELDS = FIELDS  # a config may set any CondenseConfig field


def add_arguments(p) -> None:
    p.add_argument("dataset", nargs="?", help="dataset name, folder, … (default: digits)")
    p.add_argument("--method", default="dance", choices=list(METHODS))
    p.add_argument("--ipc", type=count(1), default=10)
    p.add_argument("--iterations", type=count(0))
    p.add_argument("--budget", type=fraction, help="in (0, 1]: scale the preset down (iterations, epochs, width; "
                                                "recorded in meta; default 1)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="settings (default: quick for the embedded default dataset, else paper)")
    p.add_argument("--experts", help="expert store from `dance-ext pretrain` (DANCE; default: pretrain and cache)")
    p.add_argument("--out", default="out", help="output folder (syn.pt, grid.png, metrics.json)")
    p.add_argument("--eval-runs", type=count(0), default=3, help="evaluation runs (0: skip evaluation)")
    p.add_argument("--eval-epochs", type=count(1), help="evaluation epochs (default: the preset's, i.e. the "
                                                   f"protocol's, or {QUICK_EVAL_EPOCHS} with the quick preset, "
                                                   "× √budget)")
    p.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=VALUE",
                   help="override any CondenseConfig field, e.g. --set lr_img=0.05")
    p.add_argument("--checkpoint-dir", help="write the run state here (every --checkpoint-every iterations, "
                                            "at the end, and on SIGTERM/SIGINT)")
    p.add_argument("--checkpoint-every", type=count(1), help="iterations between checkpoints (default: log_every)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --checkpoint-dir")
    p.add_argument("--distributed", action="store_true",
                   help="one process of `torchrun --nproc_per_node N -m dance_ext condense --distributed ...`: "
                        "ranks condense slices of the classes; rank 0 evaluates and writes")
    watch = p.add_argument_group("watching the run (every log_every iterations)")
    watch.add_argument("--log-file", metavar="FILE", help="append one line of losses per log interval")
    watch.add_argument("--tensorboard", metavar="DIR", help="TensorBoard events: losses, learning rate, image "
                                                            "grids (needs the `tensorboard` extra)")
    watch.add_argument("--tensorboard-images-every", type=count(0), default=100, metavar="K",
                       help="image grid to TensorBoard every K iterations (default 100; 0: none)")
    watch.add_argument("--save-grids-every", type=count(0), default=0, metavar="K",
                       help="write OUT/grids/grid_it<iteration>.png every K iterations (default 0: none)")
    add_config(p)
    add_common(p)


# flags that are also CondenseConfig fields: --set may give them when the flag is not given
NAMED_SETTINGS = ("iterations", "budget", "eval_epochs")


def settings_of(args) -> dict:
    """The run's settings: the config file's, then the named flags, then ``--set`` (which may
    give a named setting only when its flag is not given)."""
    settings = dict(args.set)
    for name in NAMED_SETTINGS:
        flag = getattr(args, name)
        if name in settings and flag is not None:
            raise ValueError(f"--set {name}: also given as --{name.replace('_', '-')}; give it once")
        settings[name] = settings.pop(name, flag)
    return {**args.config_overrides, **settings}


def _test_split(dance_ext, dataset, root):
    try:
        return dance_ext.as_class_data(dataset, split="test", root=root)
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"--eval-runs: there is nothing to evaluate on ({exc}); pass --eval-runs 0 to skip "
                         "evaluation") from exc


def handle(args) -> int:
    import dance_ext

    from ..folders import DirectoryLock, check_output_dir
    from ..watch import Watchers

    progress = not args.no_progress
    dataset = args.dataset or DEFAULT_DATASET
    preset = args.preset or ("quick" if args.dataset is None else "paper")
    settings = settings_of(args)
    print(f"dance-ext: {args.method} on {dataset}, ipc {args.ipc}, preset {preset}", file=sys.stderr)
    check_output_dir(args.out, "--out")  # before the work, not after it
    # both splits: an evaluation that cannot run must not cost a condensation first
    train = dance_ext.as_class_data(dataset, split="train", root=args.root)
    test = _test_split(dance_ext, dataset, args.root) if args.eval_runs else None
    rank0 = not args.distributed or int(os.environ.get("RANK", "0")) == 0  # rank 0 watches and writes
    watchers = Watchers(args.ipc, log_file=args.log_file, tensorboard=args.tensorboard,
                        tensorboard_images_every=args.tensorboard_images_every, grids=Path(args.out) / "grids",
                        grids_every=args.save_grids_every, classes=train.classes) if rank0 else Watchers(args.ipc)
    with DirectoryLock(args.out, "--out") if rank0 else contextlib.nullcontext(), watchers as callback:
        result = dance_ext.condense(train, test=test, ipc=args.ipc, method=args.method, experts=args.experts,
                                    preset=preset, device=args.device, seed=args.seed, progress=progress,
                                    root=args.root, checkpoint_dir=args.checkpoint_dir,
                                    checkpoint_every=args.checkpoint_every, resume=args.resume,
                                    distributed=args.distributed, callback=callback, **settings)
        if not rank0:
            return 0  # every rank holds the gathered set; rank 0 evaluates and writes it
        if test is not None:
            # the preset's evaluation (quick: 300 epochs at width 32), scaled with the budget
            result.evaluation = dance_ext.evaluate(result, test, runs=args.eval_runs, epochs=result.meta["eval_epochs"],
                                                   width=result.meta["width"], seed=args.seed,
                                                   device=args.device, progress=progress)
        out = result.save(args.out)
    print(f"wrote {out / 'syn.pt'}, {out / 'grid.png'}, {out / 'metrics.json'} "
          f"({result.meta['seconds']:.1f} s condensation, preset {result.meta['preset']})")
    if result.evaluation:
        e = result.evaluation
        print(f"test accuracy ({e['protocol']} protocol, {len(e['runs'])} runs, last epoch): "
              f"{e['mean']:.2f} ± {e['std']:.2f} %  (best epoch, optimistic: {e['best_mean']:.2f} %)")
    return 0
