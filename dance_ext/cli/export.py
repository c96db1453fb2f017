"""`dance-ext export`: a condensed set in one of the field's formats."""
from __future__ import annotations

from ..formats import FORMATS, READABLE

HELP = "write a condensed set as tensors, PNG folders, or DM's / DANCE's own files"


def add_arguments(p) -> None:
    p.add_argument("result", help="a condensed set: a folder of `dance-ext condense` or any format load_set reads")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="the format to write")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--input-format", choices=list(READABLE), help="the format of RESULT (default: inferred)")


def handle(args) -> int:
    import dance_ext

    out = dance_ext.load_set(args.result, format=args.input_format).export(args.out, format=args.format)
    print(f"wrote {args.format} to {out}")
    return 0
