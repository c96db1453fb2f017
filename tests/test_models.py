import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dance_ext.models import (ARCHS, ConvNet, build_network, default_init_bounds, flatten_parameters_,
                              get_network, network_spec, reinit_)

pytestmark = pytest.mark.usefixtures("single_thread")


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


# ---------------------------------------------------------------- ConvNet shapes (ALGORITHMS §1.4)

@pytest.mark.parametrize("channels, size, depth, dim", [
    (1, (28, 28), 3, 2048),      # padding 3 makes 28 -> 32
    (3, (32, 32), 3, 2048),
    (3, (64, 64), 3, 8192),
    (3, (64, 64), 4, 2048),
    (3, (128, 128), 5, 2048),
    (1, (8, 8), 3, 128),         # digits: 8 -> 12 -> 6 -> 3 -> 1
    (1, (8, 8), 2, 128 * 9),
    (3, (9, 13), 2, 128 * 2 * 3),  # odd sides floor at each pooling
])
def test_convnet_feature_dims(channels, size, depth, dim):
    torch.manual_seed(0)
    net = ConvNet(channels, 7, size, width=128, depth=depth)
    x = torch.randn(2, channels, *size)
    assert net.feature_dim == dim and net.num_classes == 7
    feats = net.embed(x)
    assert feats.shape == (2, dim)
    logits, feats2 = net(x, return_features=True)
    assert logits.shape == (2, 7)
    torch.testing.assert_close(feats2, feats)
    torch.testing.assert_close(net(x), logits)
    torch.testing.assert_close(net.classifier(feats), logits)


def test_convnet_default_depth_from_size():
    assert get_network("convnet", 3, 10, (64, 64)).feature_dim == 8192   # DANCE keeps depth 3 at 64
    assert get_network("convnet", 3, 10, (128, 128)).feature_dim == 2048  # depth 5
    assert network_spec("convnet", 3, 10, 128)["depth"] == 5
    assert network_spec("convnet", 3, 10, (128, 127))["depth"] == 3


def test_convnet_parameter_counts():
    net = ConvNet(3, 10, (32, 32))
    convs = _convs(net)
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert [count(c) for c in convs] == [3584, 147584, 147584]
    assert [count(n) for n in norms] == [256, 256, 256]
    assert all(n.num_groups == n.num_channels == 128 and n.eps == 1e-5 and n.affine for n in norms)
    assert count(net.features) == 299520
    assert count(net.classifier) == 2048 * 10 + 10


@pytest.mark.parametrize("channels", [1, 3])
def test_first_conv_padding(channels):
    net = ConvNet(channels, 10, (28, 28))
    convs = _convs(net)
    assert convs[0].padding == ((3, 3) if channels == 1 else (1, 1))
    assert all(c.padding == (1, 1) and c.kernel_size == (3, 3) for c in convs[1:])
    out = convs[0](torch.randn(1, channels, 28, 28))
    assert out.shape[-2:] == ((32, 32) if channels == 1 else (28, 28))


def test_instancenorm_is_per_sample_per_channel():
    torch.manual_seed(0)
    net = ConvNet(3, 10, (16, 16), width=16, depth=2)
    gn = next(m for m in net.modules() if isinstance(m, nn.GroupNorm))
    with torch.no_grad():
        gn.weight.uniform_(0.5, 2)
        gn.bias.uniform_(-1, 1)
    x = torch.randn(4, 16, 8, 8) * 3 + 1
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * gn.weight.view(1, -1, 1, 1) + gn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(gn(x), expected, rtol=1e-5, atol=1e-5)

    # Samples never interact, and train/eval agree (no running statistics).
    xb = torch.randn(5, 3, 16, 16)
    batched = net.embed(xb)
    single = torch.cat([net.embed(xb[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
    net.eval()
    torch.testing.assert_close(net.embed(xb), batched)


def test_convnet_norm_act_pool_options():
    net = ConvNet(3, 10, (8, 8), width=8, depth=1, norm="layernorm", act="leakyrelu", pool="maxpooling")
    ln = next(m for m in net.modules() if isinstance(m, nn.LayerNorm))
    assert ln.normalized_shape == (8, 8, 8) and ln.elementwise_affine
    assert next(m for m in net.modules() if isinstance(m, nn.LeakyReLU)).negative_slope == 0.01
    assert any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    # LayerNorm sees the padded map of a 1-channel input (8 + 4 = 12).
    ln1 = next(m for m in ConvNet(1, 10, (8, 8), width=8, depth=1, norm="layernorm").modules()
               if isinstance(m, nn.LayerNorm))
    assert ln1.normalized_shape == (8, 12, 12)
    gn = next(m for m in ConvNet(3, 10, (8, 8), width=8, depth=1, norm="groupnorm").modules()
              if isinstance(m, nn.GroupNorm))
    assert gn.num_groups == 4
    assert not any(isinstance(m, (nn.GroupNorm, nn.BatchNorm2d, nn.LayerNorm))
                   for m in ConvNet(3, 10, (8, 8), width=8, depth=1, norm="none").modules())
    nopool = ConvNet(3, 10, (8, 8), width=8, depth=2, pool="none")
    assert nopool.feature_dim == 8 * 8 * 8
    swish = next(m for m in ConvNet(3, 10, (8, 8), width=8, depth=1, act="swish").modules()
                 if isinstance(m, nn.SiLU))
    t = torch.linspace(-4, 4, 17)
    torch.testing.assert_close(swish(t), t * torch.sigmoid(t))


@settings(max_examples=25, deadline=None)
@given(channels=st.sampled_from([1, 3]), h=st.integers(1, 40), w=st.integers(1, 40), depth=st.integers(1, 5),
       pool=st.sampled_from(["avgpooling", "maxpooling", "none"]))
def test_convnet_size_bookkeeping(channels, h, w, depth, pool):
    pad = 4 if channels == 1 else 0
    sh, sw = h + pad, w + pad
    ok = True
    for _ in range(depth):
        if pool == "none":
            break
        if sh < 2 or sw < 2:
            ok = False
            break
        sh, sw = sh // 2, sw // 2
    if not ok:
        with pytest.raises(ValueError, match="depth/image_size"):
            ConvNet(channels, 3, (h, w), width=4, depth=depth, pool=pool)
        return
    net = ConvNet(channels, 3, (h, w), width=4, depth=depth, pool=pool)
    assert net.feature_dim == 4 * sh * sw
    assert net.embed(torch.randn(2, channels, h, w)).shape == (2, net.feature_dim)


@pytest.mark.parametrize("kwargs, match", [
    (dict(norm="bn"), "norm"), (dict(act="tanh"), "act"), (dict(pool="avg"), "pool"),
    (dict(depth=0), "depth"), (dict(width=0), "width"), (dict(image_size=(0, 8)), "image_size"),
    (dict(image_size=(8,)), "image_size"), (dict(channels=0), "channels"), (dict(num_classes=0), "num_classes"),
    (dict(width=6, norm="groupnorm"), "width"), (dict(image_size=(8, 8), depth=4), "depth/image_size"),
])
def test_convnet_errors(kwargs, match):
    args = dict(channels=3, num_classes=10, image_size=(16, 16), width=8, depth=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ConvNet(**args)


# ---------------------------------------------------------------- get_network and specs

@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_forward_and_embed(arch):
    torch.manual_seed(0)
    for channels, size in ((1, 28), (3, 32)):
        net = get_network(arch, channels, 5, (size, size))
        x = torch.randn(2, channels, size, size)
        with torch.no_grad():
            feats = net.embed(x)
            logits, feats2 = net(x, return_features=True)
        assert feats.shape == (2, net.feature_dim) and logits.shape == (2, 5) and net.num_classes == 5
        torch.testing.assert_close(feats, feats2)
        assert torch.isfinite(logits).all()
    low, high = default_init_bounds(net)  # every module type has an init rule
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert low.shape == flat.shape and bool(((flat >= low) & (flat <= high)).all())


@pytest.mark.parametrize("arch", ["mlp", "lenet", "alexnet_bn", "vgg11", "resnet18", "resnet18_ap"])
@pytest.mark.parametrize("channels, size", [(1, (8, 8)), (3, (8, 8)), (3, (13, 9)), (3, (128, 128))])
def test_cross_arch_any_size(arch, channels, size):
    net = get_network(arch, channels, 4, size)
    norm_maps = []
    for m in net.modules():
        if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)):
            m.register_forward_pre_hook(lambda _, args: norm_maps.append(args[0].shape[2] * args[0].shape[3]))
    with torch.no_grad():
        assert net.embed(torch.randn(2, channels, *size)).shape == (2, net.feature_dim)
    assert min(norm_maps, default=2) >= 2  # downsampling never leaves a norm layer a 1x1 map


@pytest.mark.parametrize("arch, channels, size, dim", [
    ("mlp", 1, 28, 128), ("lenet", 3, 32, 84), ("alexnet", 1, 28, 3072), ("alexnet_bn", 3, 32, 3072),
    ("vgg11", 1, 28, 512), ("resnet18", 1, 28, 512), ("resnet18_bn_ap", 3, 32, 8192),
    ("resnet18_bn_ap", 1, 28, 4608), ("resnet18_bn_ap", 3, 128, 8192),
])
def test_cross_arch_original_feature_sizes(arch, channels, size, dim):
    assert get_network(arch, channels, 10, size).feature_dim == dim


def test_cross_arch_original_layers():
    lenet = get_network("lenet", 3, 10, 32)
    assert [c.padding for c in _convs(lenet)] == [(0, 0), (0, 0)]
    assert next(m for m in lenet.modules() if isinstance(m, nn.Linear)).in_features == 16 * 5 * 5
    assert _convs(get_network("lenet", 1, 10, 28))[0].padding == (2, 2)
    assert get_network("mlp", 3, 10, 32).body[1].in_features == 32 * 32 * 3
    assert _convs(get_network("alexnet", 1, 10, 28))[0].padding == (4, 4)
    vgg = get_network("vgg11", 1, 10, 28)
    assert _convs(vgg)[0].padding == (3, 3) and len(_convs(vgg)) == 8
    assert all(m.num_groups == m.num_channels for m in vgg.modules() if isinstance(m, nn.GroupNorm))
    assert any(isinstance(m, nn.BatchNorm2d) for m in get_network("vgg11_bn", 3, 10, 32).modules())
    res = get_network("resnet18", 3, 10, 32)
    assert len(_convs(res)) == 1 + 16 + 3  # stem, 8 blocks x 2, 3 projection shortcuts
    assert not any(isinstance(m, nn.BatchNorm2d) for m in res.modules())
    assert [c.stride for c in _convs(res)][5:8] == [(2, 2), (1, 1), (2, 2)]  # layer2: conv1, conv2, shortcut
    ap = get_network("resnet18_bn_ap", 3, 10, 32)
    assert all(c.stride == (1, 1) for c in _convs(ap))
    assert sum(isinstance(m, nn.AvgPool2d) for m in ap.modules()) == 6  # 3 blocks: main path + shortcut


def test_arch_names_case_and_dm_spellings():
    assert len(set(n.replace("_", "") for n in ARCHS)) == len(ARCHS)
    assert network_spec("ConvNetBN", 3, 10, 32)["arch"] == "convnet_bn"
    assert network_spec("ResNet18BN_AP", 3, 10, 32)["arch"] == "resnet18_bn_ap"
    assert network_spec("CONVNET_D4", 3, 10, 32)["depth"] == 4
    assert network_spec("convnet_w64", 3, 10, 32)["width"] == 64
    assert get_network("convnet_w32", 3, 10, 32).feature_dim == 32 * 16
    assert any(isinstance(m, nn.BatchNorm2d) for m in get_network("ConvNet_BN", 3, 10, 32).modules())


@pytest.mark.parametrize("call, match", [
    (lambda: get_network("convnet7", 3, 10, 32), "arch: unknown network 'convnet7'.*resnet18_bn_ap"),
    (lambda: get_network(None, 3, 10, 32), "arch"),
    (lambda: get_network("convnet_d2", 3, 10, 32, depth=3), "depth"),
    (lambda: get_network("convnet_w32", 3, 10, 32, width=64), "width"),
    (lambda: get_network("resnet18", 3, 10, 32, depth=3), "width/depth"),
    (lambda: get_network("mlp", 3, 10, 32, width=64), "width/depth"),
    (lambda: get_network("convnet", 3, 10, (32, 32, 3)), "image_size"),
    (lambda: get_network("convnet", 3, 10, 8, depth=4), "depth/image_size"),
    (lambda: build_network({"arch": "convnet"}), "spec"),
])
def test_get_network_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("arch, size", [("convnet", 128), ("convnet_d2", 28), ("convnet_w32", 32),
                                        ("lenet", 28), ("resnet18_bn_ap", (16, 12))])
def test_spec_roundtrip(arch, size):
    spec = network_spec(arch, 1, 10, size)
    again = json.loads(json.dumps(spec))
    assert again == spec and network_spec(**again) == spec
    a, b = build_network(again), get_network(arch, 1, 10, size)
    assert type(a) is type(b) and a.feature_dim == b.feature_dim
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert str(a) == str(b)


# ---------------------------------------------------------------- flat parameters

def test_flatten_parameters_views_and_frozen():
    torch.manual_seed(0)
    net = ConvNet(3, 10, (16, 16), width=8, depth=2)
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.randn(3, 3, 16, 16)
    y0 = net(x).detach()
    flat = flatten_parameters_(net)
    assert flat.dim() == 1 and flat.is_contiguous()
    assert flat.numel() == sum(p.numel() for p in before)
    torch.testing.assert_close(flat, torch.cat([p.reshape(-1) for p in before]))  # parameters() order
    torch.testing.assert_close(net(x), y0)
    params = list(net.parameters())
    assert all(not p.requires_grad for p in params)
    assert all(p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr() for p in params)

    flat.mul_(1.5)
    torch.testing.assert_close(params[0], before[0] * 1.5)
    assert not torch.allclose(net(x), y0)
    flat[-1] += 1.0  # last element is the classifier's last bias
    assert params[-1][-1] == before[-1][-1] * 1.5 + 1.0

    xg = x.clone().requires_grad_(True)
    net(xg).square().sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert all(p.grad is None for p in params)

    net.load_state_dict({k: torch.zeros_like(v) for k, v in net.state_dict().items()})
    assert flat.abs().sum() == 0  # load_state_dict copies into the views


def test_flatten_parameters_errors():
    with pytest.raises(ValueError, match="model"):
        flatten_parameters_(nn.ReLU())
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    with pytest.raises(ValueError, match="dtype"):
        flatten_parameters_(mixed)
    with pytest.raises(TypeError, match="model"):
        flatten_parameters_("net")


def test_default_init_bounds_values():
    net = ConvNet(1, 10, (8, 8), width=8, depth=2)  # 8 -> 12 -> 6 -> 3: feature_dim 72
    expected = {"features.0": 1 / math.sqrt(1 * 9), "features.4": 1 / math.sqrt(8 * 9),
                "classifier": 1 / math.sqrt(72), "features.1": None, "features.5": None}  # None: GroupNorm
    low, high = default_init_bounds(net)
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    assert low.shape == high.shape == flat.shape
    assert bool(((flat >= low) & (flat <= high)).all())
    offset = 0
    for name, p in net.named_parameters():
        seg = slice(offset, offset + p.numel())
        offset += p.numel()
        bound = expected[name.rsplit(".", 1)[0]]
        if bound is None:
            value = 1.0 if name.endswith("weight") else 0.0
            assert bool((low[seg] == value).all() and (high[seg] == value).all()), name
        else:
            torch.testing.assert_close(high[seg], torch.full_like(high[seg], bound))
            torch.testing.assert_close(low[seg], -high[seg])
    assert offset == flat.numel()


def test_default_init_bounds_match_pytorch_init_statistics():
    # kaiming_uniform(a=sqrt(5)) bound = gain * sqrt(3 / fan_in) with gain sqrt(2 / 6): 1/sqrt(fan_in)
    fan_in = 1152
    gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    assert math.isclose(gain * math.sqrt(3 / fan_in), 1 / math.sqrt(fan_in))
    torch.manual_seed(0)
    for layer in (nn.Linear(fan_in, 512), nn.Conv2d(128, 256, 3)):
        low, high = default_init_bounds(layer)
        bound = 1 / math.sqrt(fan_in)
        w = layer.weight.detach().reshape(-1)
        b = layer.bias.detach()
        n = w.numel()
        assert math.isclose(float(high[0]), bound, rel_tol=1e-6) and math.isclose(float(high[n]), bound, rel_tol=1e-6)
        assert w.abs().max() <= bound and b.abs().max() <= bound
        assert w.abs().max() > 0.999 * bound  # the support really reaches the bound
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.01 * bound / math.sqrt(3)
        assert abs(w.mean().item()) < 0.01 * bound


def test_default_init_bounds_unknown_module():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    with pytest.raises(TypeError, match="Odd"):
        default_init_bounds(nn.Sequential(nn.Linear(3, 3), Odd()))
    with pytest.raises(TypeError, match="Embedding"):
        default_init_bounds(nn.Embedding(4, 2))


def test_reinit_within_bounds_and_reproducible():
    net = get_network("convnet", 3, 10, 32)
    flat = flatten_parameters_(net)
    bounds = default_init_bounds(net)
    low, high = bounds
    g = torch.Generator().manual_seed(123)
    out = reinit_(flat, bounds, g)
    assert out is flat
    assert bool(((flat >= low) & (flat <= high)).all())
    expected = low + (high - low) * torch.rand(flat.shape, generator=torch.Generator().manual_seed(123))
    torch.testing.assert_close(flat, expected)  # exactly one rand call over the whole vector
    first = flat.clone()
    reinit_(flat, bounds, g)
    assert not torch.equal(first, flat)
    # The redraw has the default-init statistics, and changes the network's function.
    w = net.features[4].weight.reshape(-1)
    bound = 1 / math.sqrt(128 * 9)
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
    gn = net.features[1]
    assert bool((gn.weight == 1).all() and (gn.bias == 0).all())
    x = torch.randn(2, 3, 32, 32)
    y = net(x)
    reinit_(flat, bounds)
    assert not torch.allclose(net(x), y)


def test_reinit_errors():
    flat = torch.zeros(5)
    bounds = (torch.zeros(5), torch.ones(5))
    with pytest.raises(ValueError, match="flat"):
        reinit_(torch.zeros(5, 1), bounds)
    with pytest.raises(ValueError, match="flat"):
        reinit_(torch.zeros(5, dtype=torch.long), bounds)
    with pytest.raises(ValueError, match="bounds"):
        reinit_(flat, (torch.zeros(4), torch.ones(4)))
    with pytest.raises(ValueError, match="bounds"):
        reinit_(flat, (torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)))
    with pytest.raises(ValueError, match="bounds"):
        reinit_(flat, torch.zeros(5))
    with pytest.raises(ValueError, match="generator"):
        reinit_(torch.zeros(5, device="meta"), (torch.zeros(5, device="meta"),) * 2, torch.Generator())


def test_fresh_init_matches_default_init_distribution():
    # DM's "fresh random network": reinit_ and PyTorch's own construction give the same statistics.
    torch.manual_seed(0)
    ref = torch.cat([p.detach().reshape(-1) for p in ConvNet(3, 10, (32, 32)).parameters()])
    net = ConvNet(3, 10, (32, 32))
    flat = flatten_parameters_(net)
    reinit_(flat, default_init_bounds(net), torch.Generator().manual_seed(1))
    for seg in (slice(0, 3456), slice(3840, 3840 + 147456)):  # conv1 and conv2 weights
        assert abs(flat[seg].std() / ref[seg].std() - 1) < 0.03
        assert abs(flat[seg].abs().max() / ref[seg].abs().max() - 1) < 0.01


@pytest.mark.parametrize("size,map_side", [((8, 8), 3), ((28, 28), 4), ((32, 32), 4), ((64, 64), 8), ((128, 128), 4)])
def test_default_depth_keeps_a_spatial_map(size, map_side):
    channels = 1 if size == (28, 28) or size == (8, 8) else 3
    net = get_network("convnet", channels, 10, size, width=16)
    assert net.feature_dim == 16 * map_side * map_side
