"""Methods side by side: condense with each method and ipc over several seeds, evaluate
every set with one protocol, and tabulate mean ± std."""
from __future__ import annotations

import statistics

from .api import condense
from .data import as_class_data
from .evaluate import evaluate


def compare(train, test, methods=("random", "dm", "dance"), ipcs=(1, 10), seeds=(0, 1, 2), preset=None,
            protocol="dance", eval_epochs=None, eval_runs=1, eval_width=None, device=None, progress=True,
            root=None, **overrides) -> list[dict]:
    """One row per (method, ipc): accuracies of every seed's set (last epoch, %), their mean
    and std. The same evaluation protocol for all methods keeps the comparison fair."""
    train = as_class_data(train, split="train", root=root, device=device)
    test = as_class_data(test, split="test", root=root, device=device)
    experts = {}
    rows = []
    for ipc in ipcs:
        for method in methods:
            accuracies = []
            for seed in seeds:
                kwargs = dict(overrides)
                if method == "dance":  # experts depend on the seed only: pretrain once per seed
                    kwargs["experts"] = experts.get(seed)
                result = condense(train, ipc=ipc, method=method, preset=preset, seed=seed, device=device,
                                  progress=progress, **kwargs)
                if method == "dance":
                    experts[seed] = result.meta["experts"]["path"]
                scores = evaluate(result, test, runs=eval_runs, epochs=eval_epochs, seed=seed, protocol=protocol,
                                  width=eval_width, device=device, progress=progress)
                accuracies.extend(scores["runs"])
            rows.append({"method": method, "ipc": ipc, "accuracies": accuracies,
                         "mean": statistics.fmean(accuracies),
                         "std": statistics.pstdev(accuracies) if len(accuracies) > 1 else 0.0})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Methods as rows, ipc as columns, 'mean ± std' cells."""
    ipcs = sorted({r["ipc"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["ipc"]): f"{r['mean']:.1f} ± {r['std']:.1f}" for r in rows}
    lines = ["| method | " + " | ".join(f"ipc {i}" for i in ipcs) + " |",
             "|---|" + "---|" * len(ipcs)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(cell.get((m, i), "–") for i in ipcs) + " |")
    return "\n".join(lines)
