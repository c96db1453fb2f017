"""`dance-ext figures`: redraw the figures of a `dance-ext reproduce` output folder."""
from __future__ import annotations

HELP = "redraw the figures of a `dance-ext reproduce` folder (grids, loss and accuracy curves)"


def add_arguments(p) -> None:
    p.add_argument("results_dir", help="output folder of `dance-ext reproduce` (holding results.json)")


def handle(args) -> int:
    from ..recipes.report import read_report, write_figures

    written = write_figures(args.results_dir, read_report(args.results_dir))
    print("\n".join(str(path) for path in written))
    return 0
