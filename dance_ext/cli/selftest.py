"""`dance-ext selftest`: parity of the compiled ops with the reference ops on this device,
gradcheck, opcheck, one DM and one DANCE iteration; optional timings. Exit status 0 when
every check passed (skips included), 1 when one failed, 2 on bad arguments or no device."""
from __future__ import annotations

HELP = "check this installation: kernels vs reference ops, gradcheck, opcheck, one DM/DANCE iteration"


def add_arguments(p) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    p.add_argument("--bench", action="store_true",
                   help="also time the op ladders and one DM and one DANCE iteration at CIFAR-10 shape")
    p.add_argument("--compile", action="store_true", help="with --bench: add the torch.compile rungs (slow to compile)")
    p.add_argument("--quick", action="store_true", help="a smaller grid (sizes up to 32 px, C up to 100)")
    p.add_argument("--json", metavar="FILE", help="also write the rows, device, torch, CUDA, version and commit here")


def handle(args) -> int:
    from ..diagnostics import selftest

    report = selftest(args.device, bench=args.bench, quick=args.quick, compile=args.compile, json_path=args.json)
    return 0 if report.ok else 1
