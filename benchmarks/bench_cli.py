"""Start-up time of the command line: `python -m dance_ext --help` in a fresh process (what
`dance-ext --help` costs; the package imports torch only when a command needs it), beside
bare `python -c pass` for the interpreter's own start. Run:
    python -m pytest benchmarks/bench_cli.py --benchmark-only
"""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import save_result

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"python": [sys.executable, "-c", "pass"], "dance-ext --help": [sys.executable, "-m", "dance_ext", "--help"]}
_SECONDS: dict[str, float] = {}


@pytest.mark.parametrize("name", COMMANDS)
def test_cli_start(benchmark, name):
    def start():
        subprocess.run(COMMANDS[name], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    benchmark.pedantic(start, rounds=5, warmup_rounds=1)
    _SECONDS[name] = benchmark.stats.stats.median
    if len(_SECONDS) == len(COMMANDS):
        save_result("cli", {"device": "cpu", "median_seconds": dict(_SECONDS)})
