"""The class-batched loop against a plain sequential implementation of the official
algorithms (docs/ALGORITHMS.md §1.3, §3.5): per-class loop, torch.optim.SGD with momentum,
reference ops. Both consume the same random draws, so they must agree to float64
round-off over several iterations."""
import pytest
import torch
import torch.nn.functional as F

from dance_ext import reference
from dance_ext.condense import Condenser
from dance_ext.data import as_class_data
from dance_ext.experts import ExpertPool
from dance_ext.models import flatten_parameters_, network_spec, build_network
from dance_ext.presets import resolve
from dance_ext.synthetic import decode

C, PER_CLASS, SIZE = 3, 18, (8, 10)  # 18 = ipc·3²: the factor-3 mix init takes that many


def tiny_data(channels: int):
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(C * PER_CLASS, channels, *SIZE, generator=gen, dtype=torch.float64)
    labels = torch.arange(C).repeat(PER_CLASS)  # interleaved: class tables must not assume order
    data = as_class_data((images, labels))
    data.images = data.images.double()  # ClassData holds float32; the comparison runs in float64
    return data


def tiny_pool(data, num_experts: int = 2) -> ExpertPool:
    spec = network_spec("convnet", data.channels, C, data.image_size, 8, 2)
    flats = []
    for seed in range(2 * num_experts):
        torch.manual_seed(seed)
        flats.append(flatten_parameters_(build_network(spec)).clone())
    init = torch.stack(flats[:num_experts]).double()
    trained = torch.stack(flats[num_experts:]).double()
    manifest = {"network": spec, "channels": data.channels, "num_classes": C, "image_size": list(SIZE)}
    return ExpertPool(None, manifest, init, trained)


def make(method: str, channels: int, **overrides):
    data = tiny_data(channels)
    base = dict(iterations=3, width=8, depth=2, batch_real=5, num_experts=2 if method == "dance" else 0, lr_img=0.5 if method == "dance" else 2.0,
                backend="reference")
    base.update(overrides)
    config = resolve(method, "paper", data.name, 2, data.image_size, base)
    pool = tiny_pool(data) if method == "dance" else None
    return Condenser(data, config, torch.Generator().manual_seed(0), pool)


def syn_batch(cond, syn, c, pick):
    ipc, f = cond.config.ipc, cond.config.factor
    images = decode(syn[c * ipc:(c + 1) * ipc], f)
    if pick is not None:
        images = images[pick[c]]
    return cond.data.normalize(images) if cond.pixel_space else images


def sequential_dance_iteration(cond, syn, opt, draws):
    """DANCE.py's condense(): clamp, then one SGD step per class (inner), then per class (calib)."""
    C_, enc, exp = cond.num_classes, cond.encoder, cond.expert
    with torch.no_grad():
        syn.clamp_(0, 1)
    for c in range(C_):
        real = cond.real[draws.real_index[c]]
        s = syn_batch(cond, syn, c, draws.inner_pick)
        z = reference.siamese_augment(torch.cat([real, s]), draws.inner_params[c:c + 1])
        with torch.no_grad():
            f_real = enc.embed(z[:len(real)])
        f_syn = enc.embed(z[len(real):])
        loss = (f_real.mean(0) - f_syn.mean(0)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for params, pick in zip(draws.calib_params, draws.calib_pick):
        for c in range(C_):
            s = syn_batch(cond, syn, c, pick)
            logits = exp(reference.siamese_augment(s, params[c:c + 1]))
            loss = F.cross_entropy(logits, torch.full((len(s),), c))
            opt.zero_grad()
            loss.backward()
            opt.step()


def sequential_dm_iteration(cond, syn, opt, draws):
    """main_DM.py: the loss summed over classes, one SGD step per iteration."""
    loss = 0
    for c in range(cond.num_classes):
        real = reference.siamese_augment(cond.real[draws.real_index[c]], draws.inner_params[c:c + 1])
        s = reference.siamese_augment(syn_batch(cond, syn, c, None), draws.inner_params[c:c + 1])
        loss = loss + (cond.encoder.embed(real).detach().mean(0) - cond.encoder.embed(s).mean(0)).pow(2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()


MIX2 = {"factor": 2, "init": "mix"}  # explicit: the preset gives factor 1 below 16 px


# expected: (factor, decoded images per class = ipc·f², images used per step = min(that, batch_syn_max));
# asserted below so that the comments cannot go stale (ipc = 2)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method,overrides,expected", [
    pytest.param("dance", {}, (1, 2, 2), id="dance-preset"),  # the preset at 8×10 px: factor 1, real init
    pytest.param("dance", dict(MIX2), (2, 8, 8), id="dance-f2"),  # factor 2, mix init, one calibration round
    pytest.param("dance", dict(MIX2, iter_calib=2), (2, 8, 8), id="dance-f2-calib2"),  # repeated rounds, their tails
    pytest.param("dance", {"iter_calib": 0, "factor": 1, "init": "first"}, (1, 2, 2), id="dance-f1-nocalib"),
    pytest.param("dance", dict(MIX2, batch_syn_max=5), (2, 8, 5), id="dance-f2-sub5"),  # subsampled: 8 → 5 per class
    pytest.param("dance", dict(MIX2, batch_syn_max=3, iter_calib=2), (2, 8, 3),
                 id="dance-f2-sub3-calib2"),  # a fresh subsample per calibration round
    pytest.param("dance", {"factor": 3, "init": "mix", "batch_syn_max": 7}, (3, 18, 7),
                 id="dance-f3-sub7"),  # 8×10 px is no multiple of 3: padded decode
    pytest.param("dm", {}, (1, 2, 2), id="dm"),
    pytest.param("dm", {"chunk": 4}, (1, 2, 2), id="dm-chunk4"),  # network calls in chunks, with and without grad
    pytest.param("dance", dict(MIX2, batch_syn_max=5, chunk=3), (2, 8, 5),
                 id="dance-f2-sub5-chunk3"),  # chunks cut across classes
])
def test_batched_loop_equals_sequential(method, overrides, expected, channels):
    overrides = dict(overrides)  # the parameter dict is shared between test cases
    chunk = overrides.pop("chunk", None)
    cond = make(method, channels, **overrides)
    assert (cond.config.factor, cond.n_decoded, cond.n_syn) == expected
    if chunk is not None:
        cond.chunk = chunk
    syn = cond.syn.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=cond.config.lr_img, momentum=cond.config.momentum)
    sequential = sequential_dance_iteration if method == "dance" else sequential_dm_iteration
    initial = syn.detach().clone()
    for it in range(cond.config.iterations):
        draws = cond.draw()
        cond.prepare_networks(draws)
        sequential(cond, syn, opt, draws)
        cond.step(draws)
        diff = float((cond.syn.detach() - syn.detach()).abs().max())
        assert diff < 1e-5, f"iteration {it}: batched and sequential differ by {diff:.3g}"
    # the run moved the images, so the comparison is not vacuous
    assert (cond.syn.detach() - initial).abs().max() > 1e-3

