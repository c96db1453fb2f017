"""Network names (``ARCHS``) and reproducible, JSON-serialisable constructor specs."""
from __future__ import annotations

from torch import nn

from ..checks import hw, positive_int
from .convnet import ConvNet
from .zoo import MLP, VGG11, AlexNet, LeNet, ResNet18

# ConvNet variants: name -> the ConvNet argument it fixes (DM's ConvNetD*/W*/norm/pool/act names).
_CONVNET_VARIANTS: dict[str, dict] = {
    "convnet": {},
    **{f"convnet_d{d}": {"depth": d} for d in range(1, 6)},
    **{f"convnet_w{w}": {"width": w} for w in (32, 64, 128, 256)},
    "convnet_in": {"norm": "instancenorm"}, "convnet_bn": {"norm": "batchnorm"},
    "convnet_ln": {"norm": "layernorm"}, "convnet_gn": {"norm": "groupnorm"}, "convnet_nn": {"norm": "none"},
    "convnet_ap": {"pool": "avgpooling"}, "convnet_mp": {"pool": "maxpooling"}, "convnet_np": {"pool": "none"},
    "convnet_ar": {"act": "relu"}, "convnet_as": {"act": "sigmoid"}, "convnet_al": {"act": "leakyrelu"},
    "convnet_aswish": {"act": "swish"},
}
# Other nets: name -> (class, constructor arguments).
_OTHER_NETS: dict[str, tuple[type, dict]] = {
    "mlp": (MLP, {}),
    "lenet": (LeNet, {}),
    "alexnet": (AlexNet, {}),
    "alexnet_bn": (AlexNet, {"batchnorm": True}),
    "vgg11": (VGG11, {}),
    "vgg11_bn": (VGG11, {"norm": "batchnorm"}),
    "resnet18": (ResNet18, {}),
    "resnet18_bn": (ResNet18, {"norm": "batchnorm"}),
    "resnet18_ap": (ResNet18, {"avgpool_down": True}),
    "resnet18_bn_ap": (ResNet18, {"norm": "batchnorm", "avgpool_down": True}),
}
ARCHS: tuple[str, ...] = (*_CONVNET_VARIANTS, *_OTHER_NETS)
# Underscores are optional, so the DM spellings ("ConvNetBN", "ResNet18BN_AP") resolve too.
_BY_KEY = {name.replace("_", ""): name for name in ARCHS}
_SPEC_KEYS = ("arch", "channels", "num_classes", "image_size", "width", "depth")


def _canonical_arch(arch) -> str:
    name = _BY_KEY.get(arch.lower().replace("_", "")) if isinstance(arch, str) else None
    if name is None:
        raise ValueError(f"arch: unknown network {arch!r}; expected one of (case-insensitive): "
                         f"{', '.join(ARCHS)}")
    return name


def default_depth(height: int, width: int) -> int:
    """The papers' ConvNet depths leave a trunk map of about 4×4: 3 at 28–64 px, 5 at 128 px.
    Below 16 px (8×8 digits) depth 2 keeps a 3×3 map where depth 3 would pool to 1×1."""
    side = min(height, width)
    return 5 if side >= 128 else 3 if side >= 16 else 2


def network_spec(arch: str, channels: int, num_classes: int, image_size, width: int | None = 128,
                 depth: int | None = None) -> dict:
    """Resolved, JSON-serialisable constructor arguments: ``build_network(spec)`` rebuilds the net.

    ConvNet family: a width/depth fixed by the name (``convnet_w64``, ``convnet_d4``) wins, and a
    conflicting explicit value is an error; ``depth=None``: see ``default_depth``.
    Other nets take no width/depth: they must be left at 128 (or None) / None, and are stored as None.
    """
    name = _canonical_arch(arch)
    positive_int("channels", channels)
    positive_int("num_classes", num_classes)
    h, w = hw(image_size)
    _within_bounds(channels=channels, num_classes=num_classes, height=h, width_px=w, width=width, depth=depth)
    if name in _CONVNET_VARIANTS:
        fixed = _CONVNET_VARIANTS[name]
        if "width" in fixed:
            if width not in (None, 128, fixed["width"]):
                raise ValueError(f"width: arch {name!r} fixes width={fixed['width']}, got width={width}")
            width = fixed["width"]
        width = positive_int("width", 128 if width is None else width)
        if "depth" in fixed:
            if depth not in (None, fixed["depth"]):
                raise ValueError(f"depth: arch {name!r} fixes depth={fixed['depth']}, got depth={depth}")
            depth = fixed["depth"]
        depth = positive_int("depth", default_depth(h, w) if depth is None else depth)
    else:
        if width not in (None, 128) or depth is not None:
            raise ValueError(f"width/depth: only the ConvNet family takes them; arch {name!r} got "
                             f"width={width!r}, depth={depth!r}")
        width = None
    return {"arch": name, "channels": channels, "num_classes": num_classes, "image_size": [h, w],
            "width": width, "depth": depth}


# what a spec (possibly read from someone else's manifest) may ask for before anything is allocated
BOUNDS = {"channels": 64, "num_classes": 100_000, "height": 4096, "width_px": 4096, "width": 4096, "depth": 12}


def _within_bounds(**values) -> None:
    for name, value in values.items():
        if isinstance(value, int) and value > BOUNDS[name]:
            label = {"height": "image_size", "width_px": "image_size"}.get(name, name)
            raise ValueError(f"{label}: {value} is beyond what dance_ext builds (at most {BOUNDS[name]}); "
                             "a network spec this large is refused before anything is allocated")


def build_network(spec: dict) -> nn.Module:
    """Build the network described by a ``network_spec`` dict (e.g. read back from a manifest)."""
    if not isinstance(spec, dict) or set(spec) != set(_SPEC_KEYS):
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise ValueError(f"spec: expected a dict with keys {_SPEC_KEYS}, got {got}")
    spec = network_spec(**spec)
    name, size = spec["arch"], tuple(spec["image_size"])
    if name in _CONVNET_VARIANTS:
        fixed = {k: v for k, v in _CONVNET_VARIANTS[name].items() if k not in ("width", "depth")}
        return ConvNet(spec["channels"], spec["num_classes"], size, width=spec["width"], depth=spec["depth"],
                       **fixed)
    cls, kwargs = _OTHER_NETS[name]
    return cls(spec["channels"], spec["num_classes"], size, **kwargs)


def get_network(arch: str, channels: int, num_classes: int, image_size, width: int = 128,
                depth: int | None = None) -> nn.Module:
    """Network by name (see ``ARCHS``; case-insensitive, underscores optional), default PyTorch init.

    ``convnet``: width 128, instance norm, ReLU, avg pooling, depth by ``default_depth``.
    """
    return build_network(network_spec(arch, channels, num_classes, image_size, width, depth))
