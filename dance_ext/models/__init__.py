"""Network family: the DM / DANCE ConvNet (docs/ALGORITHMS.md §1.4, §3.10), the cross-architecture
evaluation nets of the DM repo, and flat-parameter helpers for fresh random networks (DM) and
middle-encoder interpolation (DANCE).

Every model has ``feature_dim``, ``num_classes``, ``embed(x) -> (N, feature_dim)`` and
``forward(x, return_features=False)`` returning logits, or ``(logits, features)``.
"""
from .convnet import ACTS, NORMS, POOLS, ConvNet
from .params import default_init_bounds, flatten_parameters_, reinit_
from .spec import ARCHS, build_network, default_depth, get_network, network_spec
from .zoo import MLP, VGG11, AlexNet, LeNet, ResNet18

__all__ = ["ACTS", "ARCHS", "MLP", "NORMS", "POOLS", "VGG11", "AlexNet", "ConvNet", "LeNet", "ResNet18",
           "build_network", "default_depth", "default_init_bounds", "flatten_parameters_", "get_network",
           "network_spec", "reinit_"]
