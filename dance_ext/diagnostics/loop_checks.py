"""DM and DANCE iterations of dance_ext.condense.Condenser with the compiled kernels
(``backend="extension"``) against the same iterations with the reference ops, on random
images wrapped as ClassData; DANCE's experts are random init/trained weight pairs."""
from __future__ import annotations

import torch

from ..condense import Condenser, tf32_mode
from ..data import ClassData, as_class_data
from ..experts import ExpertPool
from ..models import build_network, flatten_parameters_, network_spec
from ..presets import resolve
from .core import Outcome, Worst, kernel_skip

TINY = dict(classes=3, per_class=12, channels=3, size=16, width=16, depth=2, ipc=2, batch_real=6)
ITERATIONS = 2
# float32 end to end: the ops differ by float rounding (~1e-6), which the network's backward
# and one SGD step carry into the images (measured on CPU: ~1e-6 after two iterations)
LOOP_TOL = (1e-4, 1e-4)


def random_data(classes: int, per_class: int, channels: int, size: int, device) -> ClassData:
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(classes * per_class, channels, size, size, generator=gen)
    labels = torch.arange(classes).repeat(per_class)  # interleaved on purpose
    return as_class_data((images, labels), device=device)


def random_pool(data: ClassData, width: int, depth: int, num_experts: int) -> ExpertPool:
    """Random init/trained weight pairs standing in for pretrained experts (the cost and the
    code path do not depend on the weights' values)."""
    spec = network_spec("convnet", data.channels, data.num_classes, data.image_size, width, depth)
    flats = []
    with torch.random.fork_rng(devices=[]):
        for seed in range(2 * num_experts):
            torch.manual_seed(seed)
            flats.append(flatten_parameters_(build_network(spec)).detach().clone())
    manifest = {"network": spec, "channels": data.channels, "num_classes": data.num_classes,
                "image_size": list(data.image_size)}
    init, trained = torch.stack(flats[:num_experts]), torch.stack(flats[num_experts:])
    return ExpertPool(None, manifest, init.to(data.device), trained.to(data.device))


def condenser(method: str, data: ClassData, pool: ExpertPool | None, backend: str, **overrides) -> Condenser:
    settings = dict(iterations=ITERATIONS, backend=backend, num_experts=pool.num_experts if pool else 0)
    settings.update(overrides)
    ipc = settings.pop("ipc")
    config = resolve(method, "paper", data.name, ipc, data.image_size, settings)
    generator = torch.Generator(device=data.device).manual_seed(0)
    return Condenser(data, config, generator, pool if method == "dance" else None)


def run_iterations(cond: Condenser, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``iterations`` steps; the images and the last (inner + calibration) loss."""
    with tf32_mode(False):
        for _ in range(iterations):
            inner, calib = cond.step(cond.draw())
    loss = inner if calib is None else torch.stack([inner, calib])
    return cond.syn.detach().clone(), loss


def iteration_parity(method: str, device: torch.device) -> Outcome:
    for op in ("siamese_augment", "class_mean_mmd"):
        kernel_skip(op, device)
    t = TINY
    data = random_data(t["classes"], t["per_class"], t["channels"], t["size"], device)
    pool = random_pool(data, t["width"], t["depth"], 2) if method == "dance" else None
    settings = dict(ipc=t["ipc"], width=t["width"], depth=t["depth"], batch_real=t["batch_real"])
    results = {backend: run_iterations(condenser(method, data, pool, backend, **settings), ITERATIONS)
               for backend in ("extension", "reference")}
    worst = Worst(*LOOP_TOL)
    (syn, loss), (syn_ref, loss_ref) = results["extension"], results["reference"]
    worst.add(syn, syn_ref, "synthetic images")
    worst.add(loss, loss_ref, "losses")
    shape = "x".join(str(s) for s in (t["channels"], t["size"], t["size"]))
    return worst.outcome(f"{ITERATIONS} iterations, {t['classes']} classes {shape}, ipc {t['ipc']}, float32")
