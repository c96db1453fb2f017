"""dance_ext: fast, paper-exact dataset condensation by Distribution Matching (DM) and DANCE.

    import dance_ext
    res = dance_ext.condense("digits", ipc=10, method="dance", preset="quick")
    print(dance_ext.evaluate(res, "digits", runs=3))
    res.save("out/")
"""
import os

from .version import __version__

# MKL's matrix products (Linear layers: DANCE's expert, the evaluation networks) otherwise
# round differently for differently aligned buffers, which breaks bit-identical CPU runs
# across processes and world sizes. Read at MKL's first call; a value you set wins.
os.environ.setdefault("MKL_CBWR", "AUTO")

from . import ops  # noqa: E402  (loads the compiled ops when built)
from ._extension import build_info  # noqa: E402

from .api import condense  # noqa: E402
from .data import DATASET_STATS, ClassData, as_class_data, load_dataset  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .experts import ExpertPool, pretrain_experts  # noqa: E402
from .interop import load_set  # noqa: E402
from .results import CondenseResult  # noqa: E402

load = CondenseResult.load


def selftest(device=None, **options):
    """Check this installation on ``device`` (default: cuda if available): the compiled ops
    against the reference ops, gradcheck, opcheck, one DM and one DANCE iteration. Prints a
    table and returns a report (``.ok``, ``.rows``, ``.to_dict()``); options: ``bench``,
    ``quick``, ``compile``, ``json_path``, ``stream``. See dance_ext/diagnostics/."""
    from .diagnostics import selftest as run
    return run(device, **options)


__all__ = ["condense", "evaluate", "pretrain_experts", "load", "load_set", "load_dataset", "ops", "build_info",
           "selftest", "ClassData", "CondenseResult", "ExpertPool", "as_class_data", "DATASET_STATS", "__version__"]
