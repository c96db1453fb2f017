"""Network family: the DM / DANCE ConvNet (ALGORITHMS.md §1.4, §3.10), the cross-architecture
evaluation nets of the DM repo, and flat-parameter helpers for fresh random networks (DM) and
middle-encoder interpolation (DANCE).

Every model has ``feature_dim``, ``num_classes``, ``embed(x) -> (N, feature_dim)`` and
``forward(x, return_features=False)`` returning logits, or ``(logits, features)``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
ACTS = ("relu", "sigmoid", "leakyrelu", "swish")
POOLS = ("avgpooling", "maxpooling", "none")


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (not isinstance(image_size, Sequence) or len(image_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)):
        raise ValueError(f"image_size: expected a positive int or a pair (H, W) of positive ints, "
                         f"got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


class _Net(nn.Module):
    """Shared head: subclasses define ``embed`` and a ``classifier`` Linear(feature_dim, num_classes)."""

    feature_dim: int
    num_classes: int
    classifier: nn.Linear

    def _set_io(self, channels, num_classes, image_size) -> tuple[int, int]:
        _positive_int("channels", channels)
        self.num_classes = _positive_int("num_classes", num_classes)
        return _image_size(image_size)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.embed(x)
        logits = self.classifier(features)
        return (logits, features) if return_features else logits


def _activation(act: str) -> nn.Module:
    if act == "relu":
        return nn.ReLU()
    if act == "sigmoid":
        return nn.Sigmoid()
    if act == "leakyrelu":
        return nn.LeakyReLU(0.01)
    return nn.SiLU()  # swish: x * sigmoid(x)


def _conv_norm(norm: str, width: int, h: int, w: int) -> nn.Module | None:
    if norm == "instancenorm":
        return nn.GroupNorm(width, width, affine=True)
    if norm == "batchnorm":
        return nn.BatchNorm2d(width)
    if norm == "layernorm":
        return nn.LayerNorm([width, h, w], elementwise_affine=True)
    if norm == "groupnorm":
        return nn.GroupNorm(4, width, affine=True)
    return None


class ConvNet(_Net):
    """DM / DANCE ConvNet: ``depth`` blocks of Conv3x3 -> norm -> act -> pool(2, 2), then Linear.

    The first conv has padding 3 when ``channels == 1`` (a 28x28 image becomes 32x32), else 1.
    Pooling floors odd sides. ``feature_dim`` = width * h * w after the trunk.
    """

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], width: int = 128,
                 depth: int = 3, act: str = "relu", norm: str = "instancenorm", pool: str = "avgpooling"):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        size_text = f"{h}x{w}"
        width = _positive_int("width", width)
        depth = _positive_int("depth", depth)
        _choice("act", act, ACTS)
        _choice("norm", norm, NORMS)
        _choice("pool", pool, POOLS)
        if norm == "groupnorm" and width % 4:
            raise ValueError(f"width: norm='groupnorm' uses 4 groups and needs a multiple of 4, got {width}")

        layers: list[nn.Module] = []
        in_ch = channels
        for d in range(depth):
            pad = 3 if channels == 1 and d == 0 else 1
            layers.append(nn.Conv2d(in_ch, width, kernel_size=3, padding=pad))
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            norm_layer = _conv_norm(norm, width, h, w)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(_activation(act))
            if pool != "none":
                if h < 2 or w < 2:
                    raise ValueError(f"depth/image_size: a {size_text} image is {h}x{w} at block {d + 1}'s "
                                     f"pooling, which would make a side 0; use depth <= {d} or a larger "
                                     f"image_size (got depth={depth})")
                layers.append(nn.AvgPool2d(2, 2) if pool == "avgpooling" else nn.MaxPool2d(2, 2))
                h, w = h // 2, w // 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.feature_shape = (width, h, w)
        self.feature_dim = width * h * w
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


# ----------------------------------------------------------------------------------------------
# Cross-architecture evaluation nets (DM repo networks.py, ALGORITHMS.md §1.4). The originals are
# sized for 28x28 (1 channel) / 32x32 (3 channels); the rules below keep them identical there and
# make them work at any size from 8 to 128 px (see each class docstring).
# ----------------------------------------------------------------------------------------------

def _norm2d(norm: str, ch: int) -> nn.Module:
    # DM's "instancenorm" is GroupNorm with one channel per group.
    return nn.GroupNorm(ch, ch, affine=True) if norm == "instancenorm" else nn.BatchNorm2d(ch)


def _halve(kind: str, h: int, w: int, min_out: int = 1) -> tuple[nn.Module, int, int]:
    """2x2 stride-2 pooling that leaves unpooled an axis that would drop below ``min_out`` (so small
    images survive; min_out 2 where a norm layer follows: instance norm of a 1x1 map is degenerate
    and PyTorch rejects it)."""
    kh, kw = (2 if h >= 2 * min_out else 1), (2 if w >= 2 * min_out else 1)
    if kh == kw == 1:
        return nn.Identity(), h, w
    pool = nn.MaxPool2d((kh, kw), (kh, kw)) if kind == "max" else nn.AvgPool2d((kh, kw), (kh, kw))
    return pool, h // kh, w // kw


class MLP(_Net):
    """Linear(C*H*W, 128) -> ReLU -> Linear(128, 128) -> ReLU -> Linear(128, classes).

    The original hard-codes 28*28*1 or 32*32*3 inputs; here the first layer takes C*H*W.
    Features are the 128-d input of the last layer.
    """

    def __init__(self, channels: int, num_classes: int, image_size):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        self.body = nn.Sequential(nn.Flatten(1), nn.Linear(channels * h * w, 128), nn.ReLU(),
                                  nn.Linear(128, 128), nn.ReLU())
        self.feature_dim = 128
        self.classifier = nn.Linear(128, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LeNet(_Net):
    """Conv5x5(6) -> ReLU -> MaxPool2 -> Conv5x5(16) -> ReLU -> MaxPool2 -> FC 120 -> FC 84 -> FC.

    First conv padding 2 for 1 channel, else 0; second conv unpadded, as the original. Size rules:
    a conv whose output with that padding would be < 2 on an axis uses padding 2 there; pooling
    skips axes of size 1; the first FC takes 16*h*w of the actual map (16*5*5 at 28/32 px, as the
    original). Features are the 84-d input of the last layer.
    """

    def __init__(self, channels: int, num_classes: int, image_size):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        layers: list[nn.Module] = []
        in_ch = channels
        for out_ch, pad in ((6, 2 if channels == 1 else 0), (16, 0)):
            ph = pad if h + 2 * pad - 4 >= 2 else 2
            pw = pad if w + 2 * pad - 4 >= 2 else 2
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=5, padding=(ph, pw)), nn.ReLU()]
            h, w = h + 2 * ph - 4, w + 2 * pw - 4
            pool, h, w = _halve("max", h, w)
            layers.append(pool)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(1), nn.Linear(16 * h * w, 120), nn.ReLU(), nn.Linear(120, 84),
                                nn.ReLU())
        self.feature_dim = 84
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class AlexNet(_Net):
    """DM's small AlexNet: Conv5x5(128) [pad 4 for 1 channel, else 2] -> pool -> Conv5x5(192) -> pool
    -> Conv3x3(256) -> Conv3x3(192) -> Conv3x3(192) -> pool, ReLU after each conv (BatchNorm before it
    when ``batchnorm``), then Linear. Features are the flattened trunk output: 192*4*4 at 28/32 px as
    the original, 192*h*w of the actual map elsewhere; pooling skips axes of size 1.
    """

    def __init__(self, channels: int, num_classes: int, image_size, batchnorm: bool = False):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        layers: list[nn.Module] = []
        in_ch = channels
        plan = ((128, 5, 4 if channels == 1 else 2, True), (192, 5, 2, True), (256, 3, 1, False),
                (192, 3, 1, False), (192, 3, 1, True))
        for out_ch, k, pad, pool_after in plan:
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size=k, padding=pad))
            h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
            if batchnorm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU())
            if pool_after:
                pool, h, w = _halve("max", h, w)
                layers.append(pool)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.feature_dim = 192 * h * w
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)


class VGG11(_Net):
    """VGG11 (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M) with Conv3x3 -> norm -> ReLU; the
    first conv has padding 3 for 1 channel. Norm is instance norm (GroupNorm(C, C)) or BatchNorm.
    Size rules: a max-pooling skips an axis that would drop below 2 (below 1 for the last one, which no
    norm follows), and a global average pool precedes the classifier (the map is already 1x1 at
    28/32 px, so this matches the original there). Features: 512-d.
    """

    def __init__(self, channels: int, num_classes: int, image_size, norm: str = "instancenorm"):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        layers: list[nn.Module] = []
        in_ch = channels
        plan = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
        for i, v in enumerate(plan):
            if v == "M":
                pool, h, w = _halve("max", h, w, min_out=2 if i < len(plan) - 1 else 1)
                layers.append(pool)
                continue
            pad = 3 if channels == 1 and i == 0 else 1
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=pad), _norm2d(norm, v), nn.ReLU()]
            h, w = h + 2 * pad - 2, w + 2 * pad - 2
            in_ch = v
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        self.features = nn.Sequential(*layers)
        self.feature_dim = 512
        self.classifier = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _BasicBlock(nn.Module):
    """ResNet basic block, optionally downsampling by 2 (``down``). Plain: stride-2 3x3 conv (and 1x1
    shortcut). ``avgpool_down`` (the "_AP" variant): stride-1 convs + 2x2 average pooling. Either way
    an axis that would drop below 2 is not downsampled (a norm layer follows)."""

    def __init__(self, in_ch: int, out_ch: int, down: bool, norm: str, avgpool_down: bool, h: int, w: int):
        super().__init__()
        stride = (1, 1)
        self.down: nn.Module = nn.Identity()
        if down and avgpool_down:
            self.down, oh, ow = _halve("avg", h, w, min_out=2)
        elif down:
            # a 3x3 pad-1 stride-2 conv gives (n - 1) // 2 + 1, which is >= 2 from n = 3 up
            stride = (2 if h >= 3 else 1, 2 if w >= 3 else 1)
            oh, ow = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
        else:
            oh, ow = h, w
        self.out_hw = (oh, ow)
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm2d(norm, out_ch)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = _norm2d(norm, out_ch)
        if down or in_ch != out_ch:
            proj = nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)
            shortcut_pool = _halve("avg", h, w, min_out=2)[0] if down and avgpool_down else nn.Identity()
            self.shortcut = nn.Sequential(proj, shortcut_pool, _norm2d(norm, out_ch))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.down(self.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(_Net):
    """ResNet18 for small images: Conv3x3(64) stem (stride 1, no max-pool), 4 stages of 2 basic blocks
    (64, 128, 256, 512; stride 1, 2, 2, 2). Norm: instance norm (GroupNorm(C, C)) or BatchNorm.

    Size rules: downsampling skips an axis that would drop below 2 (identical to the original at
    28/32 px). Plain: a global average pool gives 512 features (the original's avg_pool(4) on the
    4x4 map of 28/32 px images, generalised to any size). ``avgpool_down`` (ResNet18_AP): strided
    convs are replaced by stride-1 convs + 2x2 average pooling and the final map is flattened as the
    original (512*4*4 at 32 px, 512*3*3 at 28 px); larger maps are first average-pooled adaptively
    to at most 4x4, so features never exceed 8192.
    """

    def __init__(self, channels: int, num_classes: int, image_size, norm: str = "instancenorm",
                 avgpool_down: bool = False):
        super().__init__()
        h, w = self._set_io(channels, num_classes, image_size)
        self.stem = nn.Sequential(nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False),
                                  _norm2d(norm, 64), nn.ReLU())
        blocks: list[nn.Module] = []
        in_ch = 64
        for out_ch, down in ((64, False), (128, True), (256, True), (512, True)):
            for block_down in (down, False):
                block = _BasicBlock(in_ch, out_ch, block_down, norm, avgpool_down, h, w)
                h, w = block.out_hw
                blocks.append(block)
                in_ch = out_ch
        self.layers = nn.Sequential(*blocks)
        if avgpool_down:
            oh, ow = min(h, 4), min(w, 4)
            self.pool = nn.AdaptiveAvgPool2d((oh, ow))
            self.feature_dim = 512 * oh * ow
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.feature_dim = 512
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.stem(x))).flatten(1)


# ----------------------------------------------------------------------------------------------
# Names and reproducible specs
# ----------------------------------------------------------------------------------------------

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
    _positive_int("channels", channels)
    _positive_int("num_classes", num_classes)
    h, w = _image_size(image_size)
    if name in _CONVNET_VARIANTS:
        fixed = _CONVNET_VARIANTS[name]
        if "width" in fixed:
            if width not in (None, 128, fixed["width"]):
                raise ValueError(f"width: arch {name!r} fixes width={fixed['width']}, got width={width}")
            width = fixed["width"]
        width = _positive_int("width", 128 if width is None else width)
        if "depth" in fixed:
            if depth not in (None, fixed["depth"]):
                raise ValueError(f"depth: arch {name!r} fixes depth={fixed['depth']}, got depth={depth}")
            depth = fixed["depth"]
        depth = _positive_int("depth", default_depth(h, w) if depth is None else depth)
    else:
        if width not in (None, 128) or depth is not None:
            raise ValueError(f"width/depth: only the ConvNet family takes them; arch {name!r} got "
                             f"width={width!r}, depth={depth!r}")
        width = None
    return {"arch": name, "channels": channels, "num_classes": num_classes, "image_size": [h, w],
            "width": width, "depth": depth}


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


# ----------------------------------------------------------------------------------------------
# Flat parameters
# ----------------------------------------------------------------------------------------------

def flatten_parameters_(model: nn.Module) -> torch.Tensor:
    """Move all parameters into one contiguous 1-D tensor (``model.parameters()`` order), make each
    parameter's ``.data`` a view into it, freeze them (requires_grad False) and return it.

    Writing the flat tensor changes the model. Anything that re-allocates parameters afterwards
    (``model.to(other device/dtype)``, assigning new Parameters) breaks the views; ``load_state_dict``
    copies in place and keeps them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if not params:
        raise ValueError("model: has no parameters to flatten")
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(f"model: all parameters must share one dtype and device to be flattened, got "
                         f"dtypes {sorted(map(str, dtypes))} on devices {sorted(map(str, devices))}")
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset:offset + n].view_as(p)
        p.requires_grad_(False)
        offset += n
    return flat


_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d,
               nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm)


def default_init_bounds(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high), aligned with ``flatten_parameters_(model)``, such that PyTorch's default init of
    every parameter is elementwise U(low, high).

    Conv/Linear weight: kaiming_uniform(a=sqrt(5)) has bound gain*sqrt(3/fan_in) with
    gain = sqrt(2/(1+5)), i.e. 1/sqrt(fan_in); bias: U(+-1/sqrt(fan_in)) (0 when fan_in is 0).
    Norm layers: weight 1, bias 0. BatchNorm running statistics are buffers, not covered here.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    bound_of: dict[int, float | tuple[float, float]] = {}
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            weight = module.weight
            fan_in = weight.shape[1] * math.prod(weight.shape[2:])
            b = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            for p in own.values():
                bound_of[id(p)] = b
        elif isinstance(module, _NORM_TYPES):
            for pname, p in own.items():
                value = 1.0 if pname == "weight" else 0.0
                bound_of[id(p)] = (value, value)
        else:
            raise TypeError(f"model: no default-init rule for module {name!r} of type "
                            f"{type(module).__name__} (known: Conv1d/2d/3d, Linear, BatchNorm, InstanceNorm, "
                            f"GroupNorm, LayerNorm)")
    params = list(model.parameters())
    if not params:
        raise ValueError("model: has no parameters")
    total = sum(p.numel() for p in params)
    low = torch.empty(total, dtype=params[0].dtype, device=params[0].device)
    high = torch.empty_like(low)
    offset = 0
    for p in params:
        b = bound_of[id(p)]
        lo, hi = (-b, b) if isinstance(b, float) else b
        low[offset:offset + p.numel()] = lo
        high[offset:offset + p.numel()] = hi
        offset += p.numel()
    return low, high


def reinit_(flat: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor],
            generator: torch.Generator | None = None) -> torch.Tensor:
    """In place: flat <- low + (high - low) * U[0, 1), one ``torch.rand`` on flat's device (no sync).

    With ``bounds = default_init_bounds(model)`` this redraws a fresh default-initialised network.
    """
    if not isinstance(flat, torch.Tensor) or flat.dim() != 1 or not flat.is_floating_point():
        raise ValueError(f"flat: expected a 1-D floating-point tensor, got "
                         f"{flat.dtype if isinstance(flat, torch.Tensor) else type(flat).__name__} "
                         f"of shape {tuple(flat.shape) if isinstance(flat, torch.Tensor) else ''}")
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2
            and all(isinstance(b, torch.Tensor) for b in bounds)):
        raise ValueError("bounds: expected a (low, high) pair of tensors from default_init_bounds")
    low, high = bounds
    for bname, b in (("low", low), ("high", high)):
        if b.shape != flat.shape or b.device != flat.device or b.dtype != flat.dtype:
            raise ValueError(f"bounds: {bname} must match flat (shape {tuple(flat.shape)}, {flat.dtype}, on "
                             f"{flat.device}), got shape {tuple(b.shape)}, {b.dtype}, on {b.device}")
    if generator is not None and generator.device.type != flat.device.type:
        raise ValueError(f"generator: must be on flat's device type {flat.device.type!r}, "
                         f"got {generator.device.type!r}")
    u = torch.rand(flat.shape, generator=generator, dtype=flat.dtype, device=flat.device)
    torch.addcmul(low, high - low, u, out=flat)
    return flat
