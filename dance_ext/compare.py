"""Methods side by side: condense with each method and ipc over several seeds, evaluate
every set with one protocol, and tabulate mean ± std."""
from __future__ import annotations

import statistics

from .api import condense
from .data import as_class_data
from .evaluate import evaluate
from .models.external import arch_label

CROSS_ARCHS = ("convnet", "alexnet", "vgg11", "resnet18")


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


def _pivot(rows: list[dict], row_key: str, column_key: str, column_label, sort_columns: bool) -> str:
    """A markdown table of 'mean ± std' cells: one row per ``row_key`` value, one column per
    ``column_key`` value (headed ``column_label(value)``), '–' where no row has the pair."""
    columns = list(dict.fromkeys(r[column_key] for r in rows))
    columns = sorted(columns) if sort_columns else columns
    cell = {(r[row_key], r[column_key]): f"{r['mean']:.1f} ± {r['std']:.1f}" for r in rows}
    lines = [f"| {row_key} | " + " | ".join(column_label(c) for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name in dict.fromkeys(r[row_key] for r in rows):
        lines.append(f"| {name} | " + " | ".join(cell.get((name, c), "–") for c in columns) + " |")
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    """Methods as rows, ipc as columns, 'mean ± std' cells."""
    return _pivot(rows, "method", "ipc", lambda i: f"ipc {i}", sort_columns=True)


# DANCE Table 1 (docs/ALGORITHMS.md §4.1), ConvNet-3, IPC 1 / 10 / 50: the papers' numbers, shown
# beside ours in their own columns, never in place of a measurement
PAPER_TABLE1 = {
    "fashion-mnist": {"random": (51.4, 73.8, 82.5), "herding": (67.0, 71.1, 71.9), "dm": (70.7, 83.5, 88.1),
                      "dance": (81.5, 86.3, 86.9)},
    "cifar10": {"random": (14.4, 26.0, 43.4), "herding": (21.5, 31.6, 40.4), "dm": (26.0, 48.9, 63.0),
                "dance": (47.1, 70.8, 76.1)},
    "cifar100": {"random": (4.2, 14.6, 30.0), "herding": (8.4, 17.3, 33.7), "dm": (11.4, 29.7, 43.6),
                 "dance": (27.9, 49.8, 52.8)},
    "tinyimagenet": {"random": (1.4, 5.0, 15.0), "herding": (2.8, 6.3, 16.7), "dm": (3.9, 12.9, 24.1),
                     "dance": (11.6, 26.4, 28.9)},
}
PAPER_IPCS = (1, 10, 50)


def paper_accuracy(dataset: str, method: str, ipc: int) -> float | None:
    """DANCE Table 1's mean accuracy (%) for this cell, or None where it has none."""
    values = PAPER_TABLE1.get(dataset, {}).get(method)
    return values[PAPER_IPCS.index(ipc)] if values and ipc in PAPER_IPCS else None


def paper_table(rows: list[dict], dataset: str) -> str:
    """Methods as rows; per ipc our 'mean ± std' (last epoch) beside DANCE Table 1's number."""
    ipcs = sorted({r["ipc"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["ipc"]): f"{r['mean']:.1f} ± {r['std']:.1f}" for r in rows}
    header = "| method | " + " | ".join(f"ipc {i}: ours | ipc {i}: paper" for i in ipcs) + " |"
    lines = [header, "|---|" + "---|---|" * len(ipcs)]
    for m in methods:
        cells = []
        for i in ipcs:
            paper = paper_accuracy(dataset, m, i)
            cells += [cell.get((m, i), "–"), "–" if paper is None else f"{paper:.1f}"]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cross_arch(results: dict, test, archs=CROSS_ARCHS, runs=3, epochs=None, protocol="dance", width=None,
               seed=0, device=None, progress=True) -> list[dict]:
    """Evaluate every condensed set of ``results`` (label -> CondenseResult) on every
    architecture of ``archs`` (built-in names, "timm:<name>" or callables, as ``evaluate``
    takes them): one row per (label, arch). ``width`` applies to the ConvNet family only
    (the other nets have fixed widths)."""
    test = as_class_data(test, split="test", device=device)
    rows = []
    for label, result in results.items():
        for arch in archs:
            convnet = isinstance(arch, str) and arch.lower().startswith("convnet")
            scores = evaluate(result, test, arch=arch, runs=runs, epochs=epochs, seed=seed, protocol=protocol,
                              width=width if convnet else None, device=device, progress=progress)
            rows.append({"set": label, "arch": arch_label(arch), "mean": scores["mean"], "std": scores["std"],
                         "runs": scores["runs"], "best_mean": scores["best_mean"], "epochs": scores["epochs"],
                         "protocol": scores["protocol"], "test_images": scores["test_images"],
                         "seconds": scores["seconds"]})
    return rows


def cross_arch_table(rows: list[dict]) -> str:
    """Condensed sets as rows, architectures as columns, 'mean ± std' cells."""
    return _pivot(rows, "set", "arch", str, sort_columns=False)
