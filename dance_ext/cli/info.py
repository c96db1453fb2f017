"""`dance-ext info`: build facts."""
from __future__ import annotations

import json

HELP = "build facts: compiled ops, CUDA, OpenMP threads"


def add_arguments(p) -> None:
    pass


def handle(args) -> int:
    import dance_ext

    print(json.dumps({"version": dance_ext.__version__, **dance_ext.build_info()}, indent=2))
    return 0
