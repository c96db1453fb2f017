"""Coreset baselines that join "random" on ``condense``'s ``method=`` switch: herding.

Herding (Welling, ICML 2009; the "Herding" rows of the DC/DM/DANCE tables) picks real
images of a class one at a time, each time the one that brings the mean feature of the
picked images closest to the mean feature of the whole class.

Feature space: a network trained on the real data when one is at hand, as the papers'
baseline uses, i.e. the trained weights of expert 0 of the ``experts`` store given to
``condense``; otherwise a ConvNet at PyTorch's default initialisation, seeded from the
run's seed (the embedding DM matches in). ``meta["herding"]`` records which.
"""
from __future__ import annotations

import torch

from .data import ClassData
from .experts import as_expert_pool
from .models import build_network, network_spec
from .presets import CondenseConfig
from .utils import derive_seed, seeded_network

_SEED_TAG = 3  # keeps herding's network apart from other users of derive_seed
FEATURE_BATCH = 512


def herding_indices(features: torch.Tensor, n: int) -> torch.Tensor:
    """Greedy herding on (N, D) ``features``: ``n`` distinct row indices in selection order,
    step k taking the row that minimises ‖(Σ picked + f_i)/k − mean‖²."""
    if features.dim() != 2:
        raise ValueError(f"features: expected a 2-D (N, D) tensor, got shape {tuple(features.shape)}")
    if not 1 <= n <= features.shape[0]:
        raise ValueError(f"n: expected 1 <= n <= {features.shape[0]} (the rows available), got {n}")
    features = features.double()  # running sums of thousands of rows: float32 ties would pick by rounding
    target = features.mean(0)
    picked_sum = torch.zeros_like(target)
    taken = torch.zeros(features.shape[0], dtype=torch.bool, device=features.device)
    chosen = []
    for k in range(1, n + 1):
        distance = ((picked_sum + features) / k - target).pow(2).sum(1)
        distance[taken] = float("inf")
        i = int(distance.argmin())
        chosen.append(i)
        taken[i] = True
        picked_sum += features[i]
    return torch.tensor(chosen, dtype=torch.long)


def _feature_network(data: ClassData, config: CondenseConfig, experts, seed: int):
    device = data.images.device
    if experts is None:
        spec = network_spec(config.arch, data.channels, data.num_classes, data.image_size, config.width,
                            config.depth)
        model = seeded_network(lambda: build_network(spec), derive_seed(seed, _SEED_TAG), device)
        return model, {"features": "random network (default init)", "network": spec}
    experts = as_expert_pool(experts, (data.channels, data.num_classes, data.image_size), device)
    model, _ = experts.new_model(device)  # holds expert 0's trained weights
    return model, {"features": "expert 0 (trained)", "experts": str(experts.path), "network": experts.spec}


@torch.no_grad()
def herding_images(data: ClassData, config: CondenseConfig, experts=None, seed: int = 0):
    """``config.ipc`` herded real images per class, class-major, in [0, 1] pixel space
    (C·ipc, ch, H, W) on data's device, and a dict saying which features were used."""
    model, info = _feature_network(data, config, experts, seed)
    model.eval()
    features = torch.cat([model.embed(data.normalize(data.images[i:i + FEATURE_BATCH]))
                          for i in range(0, data.images.shape[0], FEATURE_BATCH)])
    table, counts = data.class_index_table()
    chosen = []
    for c in range(data.num_classes):
        members = table[c, :int(counts[c])].to(data.images.device)
        chosen.append(members[herding_indices(features[members], config.ipc).to(members.device)])
    return data.images[torch.cat(chosen)].clone(), info
