"""A small parity run of the custom ops for compute-sanitizer (benchmarks/gpu.sh):

    PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 1 \\
        python benchmarks/sanitize_ops.py --device cuda
    compute-sanitizer --tool racecheck --error-exitcode 1 python benchmarks/sanitize_ops.py --ops class_mean_mmd

Few, small launches that still reach every code path: both conventions, copy-path and
resampled rows, C 1 and 3, odd sizes, all three parameter layouts, float32 and float64,
forward and backward; class-major and ragged MMD with D not a multiple of the kernels'
32-feature chunks, row counts not a multiple of its 8 row groups, and 1000 classes.
Exit status 1 when a result differs from the reference ops (the sanitizer's own findings
set its --error-exitcode), 2 when the device has no kernel (unless --allow-missing).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's dance_ext, built in place or not
from dance_ext.diagnostics import op_checks  # noqa: E402
from dance_ext.diagnostics.core import run_check  # noqa: E402

SIZES = ((8, 8), (13, 17), (32, 32))
MMD_SHAPES = ((1, 3, 1, 1), (7, 19, 5, 70), (1000, 2, 1, 33), (3, 9, 3, 1000))


def checks(ops: list[str], device: torch.device) -> list:
    out = []
    if "siamese_augment" in ops:
        for kind in ("copy", "resampled"):
            for convention in ("vico", "idc"):
                for dtype in op_checks.DTYPES:
                    out.append((f"siamese_augment {convention} {kind} {dtype}", lambda k=kind, c=convention, d=dtype:
                                op_checks.augment_parity(k, c, d, device, SIZES)))
        out.append(("siamese_augment edge cases", lambda: op_checks.augment_edge_cases(device)))
    if "class_mean_mmd" in ops:
        for layout in ("class-major", "ragged"):
            for dtype in op_checks.DTYPES:
                out.append((f"class_mean_mmd {layout} {dtype}", lambda lay=layout, d=dtype:
                            op_checks.mmd_parity(lay, d, device, MMD_SHAPES)))
        out.append(("class_mean_mmd edge cases", lambda: op_checks.mmd_edge_cases(device)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ops", nargs="+", choices=["siamese_augment", "class_mean_mmd"],
                        default=["siamese_augment", "class_mean_mmd"])
    parser.add_argument("--allow-missing", action="store_true", help="a missing kernel is not an error")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"sanitize_ops: no CUDA device (torch {torch.__version__})", file=sys.stderr)
        return 2
    rows = [run_check(name, check, device) for name, check in checks(args.ops, device)]
    for row in rows:
        print(f"{row.status:8s} {row.check}  {row.note}")
    if any(row.status == "fail" for row in rows):
        return 1
    if any(row.status == "skipped" for row in rows) and not args.allow_missing:
        return 2
    print(f"sanitize_ops: {len(rows)} checks passed on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
