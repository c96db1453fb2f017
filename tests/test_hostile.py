"""Hostile input through the public API and the CLI: one row per input, each a clear error
(type + a message naming the argument and what was expected) raised before any work starts,
with every output that already existed left byte-identical and no temp file left behind.
docs/HOSTILE_INPUTS.md is the table of these rows."""
import gzip
import io
import json
import os
import pickle
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import dance_ext
from dance_ext import cli, ops
from dance_ext.data import load_dataset
from dance_ext.results import CondenseResult
from test_data import fake_idx, write_cifar10, write_idx_split

pytestmark = pytest.mark.usefixtures("single_thread")

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present here")
TINY = dict(iterations=2, preset="quick", width=8, depth=2, batch_real=16, log_every=1, progress=False)
DM = dict(TINY, ipc=1, method="dm")


class Marker:
    """Unpickling this creates the folder ``target``: proof that a loader ran pickled code."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


# ---------------------------------------------------------------------------------------
# Shared inputs: a tiny expert store and a saved result, copied per case

@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def store(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "experts"
    dance_ext.pretrain_experts(digits, num=1, epochs=1, out=out, width=8, depth=2, progress=False)
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    res = dance_ext.condense("digits", ipc=1, method="random", progress=False)
    return res, res.save(tmp_path_factory.mktemp("saved") / "result")


class Guarded:
    """A case's folder ``tmp``: the paths that must come out of the hostile call unchanged, and
    the marker that pickled code would create."""
    tmp: Path
    guarded: list

    @property
    def marker(self) -> Path:
        return self.tmp / "code-ran"

    def guard(self, path: Path) -> Path:
        """``path`` must come out of the hostile call byte-identical (no new files either)."""
        self.guarded.append(path)
        return path


@dataclass
class Ctx(Guarded):
    tmp: Path
    digits: object
    store_src: Path
    saved: tuple
    guarded: list = field(default_factory=list)

    def store(self) -> Path:
        return Path(shutil.copytree(self.store_src, self.tmp / "experts"))

    def result_dir(self) -> Path:
        return Path(shutil.copytree(self.saved[1], self.tmp / "result"))


@pytest.fixture
def ctx(tmp_path, digits, store, saved, monkeypatch):
    monkeypatch.setenv("DANCE_EXT_CACHE", str(tmp_path / "cache"))  # DANCE's expert cache stays in tmp
    c = Ctx(tmp_path, digits, store, saved)
    c.guard(tmp_path / "cache")
    return c


def snapshot(path: Path) -> dict | None:
    if not path.exists():
        return None
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def no_work(monkeypatch):
    """Pretraining, evaluation training and the condensation loop fail the test if reached."""
    def work(*args, **kwargs):
        raise AssertionError("work started before the input was refused")

    # sys.modules: the package's condense / evaluate attributes are the functions of those names
    monkeypatch.setattr(sys.modules["dance_ext.experts"], "train_epoch", work)
    monkeypatch.setattr(sys.modules["dance_ext.evaluate"], "train_epoch", work)
    monkeypatch.setattr(sys.modules["dance_ext.condense"].Condenser, "step", work)


# ---------------------------------------------------------------------------------------
# Hostile inputs

def pair(n: int = 30, classes: int = 3, **change):
    """(images, labels) of n random 8×8 grey images, classes round-robin, with fields replaced."""
    data = {"images": torch.rand(n, 1, 8, 8), "labels": torch.arange(n) % classes}
    data.update(change)
    return data["images"], data["labels"]


def with_pixel(value: float):
    images = torch.rand(30, 1, 8, 8)
    images[7, 0, 3, 3] = value
    return pair(images=images)


class Items(torch.utils.data.Dataset):
    """A map-style Dataset that declares its classes."""

    def __init__(self, labels, classes):
        self.labels, self.classes = labels, classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.rand(1, 8, 8), self.labels[i]


def mnist_folder(c: Ctx, corrupt=None) -> Path:
    """An MNIST IDX folder (gzipped) whose image file ``corrupt(bytes) -> bytes`` rewrites."""
    root = c.tmp / "mnist"
    write_idx_split(root, "train", *fake_idx(20, 0), gz=True)
    images = root / "train-images-idx3-ubyte.gz"
    if corrupt is not None:
        images.write_bytes(corrupt(images.read_bytes()))
    return root


def mnist_with_label(c: Ctx, label: int) -> Path:
    images, labels = fake_idx(20, 0)
    labels[5] = label
    write_idx_split(c.tmp / "mnist", "train", images, labels, gz=False)
    return c.tmp / "mnist"


def cifar_folder(c: Ctx, corrupt=None) -> Path:
    """A CIFAR-10 folder whose data_batch_2 ``corrupt(bytes) -> bytes`` rewrites."""
    write_cifar10(c.tmp / "cifar")
    if corrupt is not None:
        batch = c.tmp / "cifar" / "data_batch_2"
        batch.write_bytes(corrupt(batch.read_bytes()))
    return c.tmp / "cifar"


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def evil_pickle(c: Ctx) -> bytes:
    return pickle.dumps({"data": Marker(str(c.marker)), "labels": []}, protocol=2)


def tampered_store(c: Ctx, weights=None, manifest=None) -> Path:
    """A copy of the tiny expert store with its weights bytes and/or manifest dict rewritten."""
    path = c.store()
    if weights is not None:
        file = path / "experts.safetensors"
        file.write_bytes(weights(file.read_bytes()))
    if manifest is not None:
        file = path / "manifest.json"
        file.write_text(json.dumps(manifest(json.loads(file.read_text()))))
    return c.guard(path)


def flip_middle(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def dance_with(c: Ctx, experts, train=None):
    return lambda: dance_ext.condense(c.digits if train is None else train, ipc=1, method="dance",
                                      experts=str(experts), num_experts=1, **TINY)


def result_with(c: Ctx, rewrite) -> Path:
    """A copy of the saved result whose syn.pt bytes ``rewrite(c, bytes)`` replaces."""
    path = c.result_dir()
    (path / "syn.pt").write_bytes(rewrite(c, (path / "syn.pt").read_bytes()))
    return path


def flip_image_byte(c: Ctx, data: bytes) -> bytes:
    stored = c.saved[0].images.numpy().tobytes()
    at = data.find(stored)  # the tensor bytes are stored raw in the zip: flip one of them
    assert at >= 0
    return data[:at] + flip_middle(stored) + data[at + len(stored):]


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_over_result(c: Ctx, **change):
    res = c.saved[0]
    parts = dict(images=res.images, labels=res.labels, meta=res.meta)
    parts.update(change)
    target = c.guard(c.result_dir())
    return lambda: CondenseResult(**parts).save(target)


def resume_other_config(c: Ctx):
    checkpoints = c.tmp / "ckpt"
    dance_ext.condense(c.digits, checkpoint_dir=checkpoints, **DM)
    assert any(checkpoints.iterdir())
    c.guard(checkpoints)
    return lambda: dance_ext.condense(c.digits, checkpoint_dir=checkpoints, resume=True, **dict(DM, lr_img=0.5))


def resume_truncated(c: Ctx):
    checkpoints = c.tmp / "ckpt"
    dance_ext.condense(c.digits, checkpoint_dir=checkpoints, **DM)
    for file in checkpoints.iterdir():
        file.write_bytes(half(file.read_bytes()))
    c.guard(checkpoints)
    return lambda: dance_ext.condense(c.digits, checkpoint_dir=checkpoints, resume=True, **DM)


def pretrain_into(c: Ctx, out: Path, train=None, device=None):
    return lambda: dance_ext.pretrain_experts(c.digits if train is None else train, num=1, epochs=1, out=out,
                                              width=8, depth=2, device=device, progress=False)


def a_file(c: Ctx) -> Path:
    path = c.tmp / "a-file"
    path.write_text("not a folder")
    return c.guard(path)


def dangling_link(c: Ctx) -> Path:
    link = c.tmp / "gone"
    link.symlink_to(c.tmp / "no-such-target")
    return link


def image_folder_without_test(c: Ctx) -> Path:
    from PIL import Image
    root = c.tmp / "pictures"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8), 40 * i).save(root / cls / f"{i}.png")
    return root


def evaluate_on_digits(images, labels):
    return lambda: dance_ext.evaluate((images, labels), "digits", runs=1, epochs=1, progress=False)



CASES = [
    # -- dtypes
    pytest.param(lambda c: lambda: dance_ext.condense(pair(images=torch.rand(30, 1, 8, 8) > 0.5), **DM),
                 TypeError, r"images: expected numeric pixels .* got dtype torch\.bool", id="bool-images"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=torch.arange(30) % 3 * 1.0), **DM),
                 TypeError, "labels: expected integer class labels, got dtype torch.float32", id="float-labels"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(images=torch.full((30, 1, 8, 8), 300)), **DM),
                 ValueError, r"images: integer values span \[300, 300\]; expected 0\.\.255", id="int-images-over-255"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(images=torch.rand(30, 1, 8, 8) * 255), **DM),
                 ValueError, r"images: float values span .* expected pixel space \[0, 1\]", id="float-images-0-255"),
    pytest.param(lambda c: lambda: ops.siamese_augment(torch.zeros(2, 1, 4, 4, dtype=torch.int32), torch.zeros(1, 13)),
                 TypeError, "x: expected a floating-point tensor, got dtype torch.int32", id="augment-int-images"),
    pytest.param(lambda c: lambda: ops.class_mean_mmd(torch.zeros(2, 3, 4, dtype=torch.int64), torch.zeros(2, 1, 4)),
                 ValueError, "f_real: expected a floating-point 2-D or 3-D tensor", id="mmd-int-features"),
    pytest.param(lambda c: lambda: ops.class_mean_mmd(torch.zeros(2, 3, 4), torch.zeros(2, 1, 4, dtype=torch.float64)),
                 TypeError, "f_syn: expected dtype torch.float32 like f_real", id="mmd-mixed-dtypes"),
    pytest.param(lambda c: evaluate_on_digits(torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.arange(3)),
                 ValueError, r"result: expected float images of shape \(N, C, H, W\)", id="evaluate-uint8-images"),
    # -- shapes
    pytest.param(lambda c: lambda: dance_ext.condense(pair(images=torch.rand(30, 1, 1, 8, 8)), **DM),
                 ValueError, r"images: expected 4-D \(N, C, H, W\) .* got shape \(30, 1, 1, 8, 8\)", id="5d-images"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(images=torch.rand(30, 4, 8, 8)), **DM),
                 ValueError, r"images: expected 4-D \(N, C, H, W\) with C in \{1, 3\}", id="4-channel-images"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=torch.arange(29) % 3), **DM),
                 ValueError, r"labels: 29 labels for 30 images \(length mismatch\)", id="labels-length-mismatch"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=(torch.arange(30) % 3)[:, None]), **DM),
                 ValueError, r"labels: expected a 1-D \(N,\) tensor, got shape \(30, 1\)", id="2d-labels"),
    pytest.param(lambda c: lambda: ops.siamese_augment(torch.zeros(1, 4, 4), torch.zeros(1, 13)),
                 ValueError, r"x: expected a 4-D \(N, C, H, W\) tensor, got shape \(1, 4, 4\)", id="augment-3d-images"),
    pytest.param(lambda c: lambda: ops.siamese_augment(torch.zeros(2, 1, 4, 4), torch.zeros(1, 12)),
                 ValueError, r"params: expected a \(P, 13\) tensor, got shape \(1, 12\)", id="augment-params-columns"),
    pytest.param(lambda c: lambda: ops.class_mean_mmd(torch.zeros(2, 3, 4), torch.zeros(3, 1, 4)),
                 ValueError, "f_syn: expected C=2 classes like f_real, got 3", id="mmd-class-count-mismatch"),
    pytest.param(lambda c: evaluate_on_digits(torch.rand(3, 1, 16, 16), torch.arange(3)),
                 ValueError, r"test: its images are 1×\(8, 8\) .* synthetic images are 1×\(16, 16\)",
                 id="evaluate-image-size-mismatch"),
    # -- devices
    pytest.param(lambda c: lambda: dance_ext.condense(c.digits, device="cuda", **DM), ValueError,
                 "device: cuda was asked for but torch has no usable CUDA device", id="condense-cuda", marks=NO_CUDA),
    pytest.param(lambda c: lambda: dance_ext.condense(c.digits, device="gpu", **DM), ValueError,
                 r"device: expected 'cpu', 'cuda', 'cuda:N' or a torch\.device, got 'gpu'", id="device-typo"),
    pytest.param(lambda c: lambda: load_dataset("digits", device="cuda"), ValueError,
                 "device: cuda was asked for", id="load-dataset-cuda", marks=NO_CUDA),
    pytest.param(lambda c: lambda: dance_ext.ExpertPool.load(c.store(), device="cuda"), ValueError,
                 "device: cuda was asked for", id="expert-pool-cuda", marks=NO_CUDA),
    pytest.param(lambda c: pretrain_into(c, c.guard(c.tmp / "new"), device="cuda"),
                 ValueError, "device: cuda was asked for", id="pretrain-cuda", marks=NO_CUDA),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(images=torch.rand(30, 1, 8, 8, device="meta")), **DM),
                 ValueError, "images: a meta tensor has a shape but no values", id="meta-images"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=(torch.arange(30) % 3).to("meta")), **DM),
                 ValueError, "labels: a meta tensor has a shape but no values", id="meta-labels"),
    pytest.param(lambda c: lambda: ops.siamese_augment(torch.zeros(2, 1, 4, 4), torch.zeros(1, 13, device="meta")),
                 ValueError, "params: expected device cpu \\(the device of x\\), got meta", id="augment-params-device"),
    pytest.param(lambda c: lambda: ops.class_mean_mmd(torch.zeros(2, 3, 4), torch.zeros(2, 1, 4, device="meta")),
                 ValueError, "f_syn: expected device cpu like f_real, got meta", id="mmd-features-device"),
    pytest.param(lambda c: evaluate_on_digits(torch.rand(3, 1, 8, 8, device="meta"), torch.arange(3)),
                 ValueError, "result: .*meta", id="evaluate-meta-images"),
    # -- NaN / inf
    pytest.param(lambda c: lambda: dance_ext.condense(with_pixel(float("nan")), **DM),
                 ValueError, "images: contains NaN or inf", id="nan-images"),
    pytest.param(lambda c: lambda: dance_ext.condense(with_pixel(float("inf")), **DM),
                 ValueError, "images: contains NaN or inf", id="inf-images"),
    pytest.param(lambda c: pretrain_into(c, c.guard(c.tmp / "new"), train=with_pixel(float("nan"))),
                 ValueError, "images: contains NaN or inf", id="pretrain-nan-images"),
    pytest.param(lambda c: lambda: dance_ext.evaluate(c.saved[0], with_pixel(float("nan")), runs=1, epochs=1,
                                                      progress=False),
                 ValueError, "images: contains NaN or inf", id="evaluate-nan-test-set"),
    pytest.param(lambda c: evaluate_on_digits(torch.full((3, 1, 8, 8), float("nan")), torch.arange(3)),
                 ValueError, "result: .*NaN", id="evaluate-nan-images"),
    pytest.param(lambda c: save_over_result(c, images=c.saved[0].images * float("nan")),
                 ValueError, "images: contains NaN or inf", id="save-nan-result"),
    pytest.param(lambda c: lambda: dance_ext.condense(c.digits, lr_img=float("inf"), **DM),
                 ValueError, "lr_img: expected a finite number > 0, got inf", id="inf-lr"),
    # -- empty data, missing classes, ipc
    pytest.param(lambda c: lambda: dance_ext.condense(pair(n=0), **DM),
                 ValueError, r"images: the dataset is empty \(N = 0\)", id="empty-dataset"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=torch.arange(30) % 2 * 2), **DM),
                 ValueError, r"labels: class ids must be 0\.\.C-1 .* ids in 0\.\.2 without an image: 1 \(first: 1\)",
                 id="missing-class-id"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=torch.arange(30) % 3 + 1), **DM),
                 ValueError, r"labels: class ids must be 0\.\.C-1 .* \(first: 0\)", id="one-based-labels"),
    pytest.param(lambda c: lambda: dance_ext.condense(Items([0, 2] * 5, ["a", "b", "c"]), **DM),
                 ValueError, r"ipc: class 1 of Items has only 0 images, fewer than ipc = 1", id="declared-class-empty"),
    pytest.param(lambda c: lambda: dance_ext.condense(Items([0, 2] * 5, ["a", "b", "c"]), **dict(DM, init="noise")),
                 ValueError, "class 1 .*0 images", id="declared-class-empty-noise-init"),
    pytest.param(lambda c: lambda: dance_ext.condense(pair(), **dict(DM, ipc=11)),
                 ValueError, r"ipc: class 0 of tensors has only 10 images, fewer than ipc = 11", id="ipc-over-class"),
    pytest.param(lambda c: lambda: dance_ext.condense(c.digits, ipc=40, method="dance", factor=2, experts=None,
                                                      **dict(TINY, iterations=1)),
                 ValueError, r"ipc: class \d of digits has only \d+ images, fewer than ipc·factor² = 40·2² = 160",
                 id="ipc-factor-over-class"),
    pytest.param(lambda c: lambda: dance_ext.condense(c.digits, **dict(DM, ipc=True)),
                 ValueError, "ipc: expected a positive int, got True", id="bool-ipc"),
    # -- labels out of range
    pytest.param(lambda c: lambda: dance_ext.condense(pair(labels=torch.arange(30) % 3 - 1), **DM),
                 ValueError, "labels: negative label -1 at index 0", id="negative-label"),
    pytest.param(lambda c: lambda: dance_ext.condense(Items([0, 1, 5, 1], ["a", "b"]), **DM),
                 ValueError, r"labels: label 5 at index 2 is out of range for 2 classes; expected 0\.\.1",
                 id="label-over-declared-classes"),
    pytest.param(lambda c: lambda: load_dataset("mnist", root=mnist_with_label(c, 12)),
                 ValueError, "labels: label 12 at index 5 is out of range for 10 classes", id="idx-label-over-10"),
    pytest.param(lambda c: evaluate_on_digits(torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 12])),
                 ValueError, r"result: labels must lie in \[0, 10\), got \[0, 12\]", id="evaluate-label-over-classes"),
    pytest.param(lambda c: lambda: ops.siamese_augment(torch.zeros(2, 1, 4, 4), torch.zeros(3, 13), torch.tensor([0, 5])),
                 ValueError, r"index: expected values in \[0, 3\) \(rows of params\), got 5", id="augment-index-range"),
    # -- dataset files
    pytest.param(lambda c: lambda: load_dataset("mnist", root=mnist_folder(c, lambda b: b[:2] + os.urandom(64))),
                 ValueError, "train-images-idx3-ubyte.gz: truncated or corrupt gzip data", id="idx-gzip-garbage"),
    pytest.param(lambda c: lambda: load_dataset("mnist", root=mnist_folder(
        c, lambda b: gzip.compress(b"\x08\x08" + gzip.decompress(b)[2:]))),
                 ValueError, r"train-images-idx3-ubyte.gz: not an IDX file \(magic bytes 08 08", id="idx-wrong-magic"),
    pytest.param(lambda c: lambda: load_dataset("mnist", root=mnist_folder(
        c, lambda b: gzip.compress(half(gzip.decompress(b))))),
                 ValueError, r"train-images-idx3-ubyte.gz: truncated IDX file: dims \(20, 6, 5\) need 600 data bytes",
                 id="idx-truncated"),
    pytest.param(lambda c: lambda: load_dataset("mnist", root=mnist_folder(c, half)),
                 ValueError, "train-images-idx3-ubyte.gz: truncated or corrupt gzip data", id="idx-gzip-truncated"),
    pytest.param(lambda c: lambda: dance_ext.condense(str(c.tmp / "missing-folder"), **DM),
                 ValueError, "data: '.*missing-folder' is neither a known dataset .* nor an existing folder",
                 id="missing-dataset-folder"),
    pytest.param(lambda c: lambda: load_dataset("mnist", root=c.tmp),
                 FileNotFoundError, r"mnist: no IDX files for split 'train' .* train-images-idx3-ubyte\[\.gz\]",
                 id="missing-idx-files"),
    pytest.param(lambda c: lambda: load_dataset("cifar10", root=cifar_folder(c, half)),
                 ValueError, "data_batch_2: truncated or corrupt pickle", id="cifar-truncated-pickle"),
    pytest.param(lambda c: lambda: load_dataset("cifar10", root=cifar_folder(c, lambda b: evil_pickle(c))),
                 ValueError, r"data_batch_2: refusing to load global posix\.mkdir", id="cifar-pickled-code"),
    pytest.param(lambda c: lambda: load_dataset("cifar10", root=cifar_folder(c, lambda b: b"")),
                 ValueError, r"data_batch_2: truncated or corrupt pickle \(EOFError", id="cifar-empty-file"),
    # -- expert stores
    pytest.param(lambda c: dance_with(c, tampered_store(c, weights=flip_middle)),
                 ValueError, r"experts\.safetensors': sha256 \w+ does not match the manifest's", id="experts-flipped-byte"),
    pytest.param(lambda c: dance_with(c, tampered_store(c, weights=half)),
                 ValueError, r"experts\.safetensors': sha256 .* corrupt, truncated", id="experts-truncated"),
    pytest.param(lambda c: dance_with(c, tampered_store(c, manifest=lambda m: {**m, "weights_file": "gone.safetensors"})),
                 FileNotFoundError, "manifest.json is there but gone.safetensors is missing", id="manifest-missing-weights"),
    pytest.param(lambda c: dance_with(c, tampered_store(c, manifest=lambda m: {**m, "weights_file": "../x.safetensors"})),
                 ValueError, "weights_file: expected a file name in the store's folder", id="manifest-outside-folder"),
    pytest.param(lambda c: dance_with(c, tampered_store(c, manifest=lambda m: {**m, "num_experts": "1"})),
                 ValueError, "num_experts: expected a positive int, got '1'", id="manifest-bad-field"),
    pytest.param(lambda c: dance_with(c, tampered_store(c, manifest=lambda m: [m])),
                 ValueError, r"not a dance_ext\.experts manifest \(a JSON list", id="manifest-not-an-object"),
    pytest.param(lambda c: dance_with(c, c.tmp),
                 FileNotFoundError, "no manifest.json; not an expert store", id="experts-not-a-store"),
    pytest.param(lambda c: dance_with(c, c.store(), train=pair()),
                 ValueError, r"experts: the store .* num_classes=10.* but .*num_classes=3", id="experts-other-dataset"),
    pytest.param(lambda c: pretrain_into(c, c.guard(c.store())),
                 FileExistsError, "out: .* already holds an expert store; pass overwrite=True", id="pretrain-over-store"),
    pytest.param(lambda c: pretrain_into(c, a_file(c)),
                 ValueError, "out: .*a-file' cannot be a folder", id="pretrain-out-is-a-file"),
    # -- saved results
    pytest.param(lambda c: lambda: dance_ext.load(result_with(c, lambda c, b: half(b))),
                 ValueError, r"path: .*syn\.pt is not a readable dance_ext result \(truncated or corrupt",
                 id="result-truncated"),
    pytest.param(lambda c: lambda: dance_ext.load(result_with(c, flip_image_byte)),
                 ValueError, r"path: .*syn\.pt: its content does not match its sha256", id="result-flipped-byte"),
    pytest.param(lambda c: lambda: dance_ext.load(result_with(
        c, lambda c, b: torch_bytes({"format_version": 2, "images": Marker(str(c.marker))}))),
                 ValueError, r"path: .*syn\.pt is not a readable dance_ext result: it holds a pickled posix\.mkdir",
                 id="result-pickled-code"),
    pytest.param(lambda c: lambda: dance_ext.load(result_with(c, lambda c, b: torch_bytes({"weights": torch.ones(2)}))),
                 ValueError, r"path: .*syn\.pt is not a dance_ext result of format 1, 2 or 3 \(found None\)",
                 id="result-foreign-torch-file"),
    pytest.param(lambda c: lambda: dance_ext.load(c.tmp / "nothing-here"),
                 FileNotFoundError, "path: no condensed set at .*nothing-here", id="result-missing"),
    pytest.param(lambda c: lambda: dance_ext.load(metrics_cut(c.result_dir())),
                 ValueError, r"path: .*metrics\.json is unreadable", id="result-metrics-truncated"),
    pytest.param(lambda c: save_over_result(c, labels=c.saved[0].labels[:3]),
                 ValueError, r"labels: expected an int64 tensor \(10,\), one per image", id="save-labels-mismatch"),
    pytest.param(lambda c: save_over_result(c, meta={"method": "random"}),
                 ValueError, "meta: expected a dict with a positive int 'num_classes'", id="save-meta-incomplete"),
    pytest.param(lambda c: save_over_result(c, meta={**c.saved[0].meta, "note": object()}),
                 TypeError, "meta: a value of type object is not JSON-serialisable", id="save-meta-not-json"),
    pytest.param(lambda c: (lambda target: lambda: c.saved[0].save(target))(a_file(c)),
                 ValueError, "directory: .*a-file' cannot be a folder", id="save-into-a-file"),
    # -- checkpoints
    pytest.param(resume_other_config, ValueError, "checkpoint", id="checkpoint-other-config"),
    pytest.param(resume_truncated, ValueError, "checkpoint", id="checkpoint-truncated"),
    pytest.param(lambda c: lambda: dance_ext.condense(c.digits, checkpoint_dir=a_file(c), **DM),
                 ValueError, "checkpoint_dir: .*a-file' cannot be a folder", id="checkpoint-dir-is-a-file"),
]


def metrics_cut(path: Path) -> Path:
    (path / "metrics.json").write_bytes(half((path / "metrics.json").read_bytes()))
    return path


def assert_refused(call, ctx, exc, match, forbid_work) -> None:
    """``call()`` raises ``exc`` with a one-line message matching ``match``, before any work
    (``forbid_work`` patches the work to fail), runs no pickled code and changes no guarded file."""
    before = {p: snapshot(p) for p in ctx.guarded}
    forbid_work()
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value), "the message must be one line"
    assert not ctx.marker.exists(), "pickled code ran"
    for path, content in before.items():
        assert snapshot(path) == content, f"{path} changed"


def assert_cli_refused(argv, ctx, match, forbid_work, monkeypatch, capsys) -> None:
    """``dance-ext ARGV`` ends with exit status 2 and one "dance-ext: error:" line matching
    ``match``, no traceback, before any work, with no guarded file changed."""
    before = {p: snapshot(p) for p in ctx.guarded}
    forbid_work()
    monkeypatch.setattr(sys, "argv", ["dance-ext", *argv])
    with pytest.raises(SystemExit) as info:
        cli.run()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dance-ext: error: ")]
    assert len(errors) == 1 and err.rstrip("\n").endswith(errors[0]), err
    assert re.search(match, errors[0]), errors[0]
    assert not ctx.marker.exists(), "pickled code ran"
    for path, content in before.items():
        assert snapshot(path) == content, f"{path} changed"


@pytest.mark.parametrize("build,exc,match", CASES)
def test_hostile_input(build, exc, match, ctx, monkeypatch):
    assert_refused(build(ctx), ctx, exc, match, lambda: no_work(monkeypatch))


# ---------------------------------------------------------------------------------------
# The same inputs through the CLI: exit code 2, one "dance-ext: error: ..." line, no traceback

CONDENSE_DM = ["condense", "digits", "--method", "dm", "--preset", "quick", "--iterations", "1", "--eval-runs", "0"]

CLI_CASES = [
    pytest.param(lambda c: ["condense", str(mnist_folder(c, half)), "--method", "dm"],
                 "train-images-idx3-ubyte.gz: truncated or corrupt gzip data", id="cli-idx-gzip-truncated"),
    pytest.param(lambda c: [*CONDENSE_DM, "--device", "cuda"],
                 "device: cuda was asked for", id="cli-condense-cuda", marks=NO_CUDA),
    pytest.param(lambda c: [*CONDENSE_DM, "--ipc", "200"],
                 r"ipc: class \d of digits has only \d+ images, fewer than ipc = 200", id="cli-ipc-over-class"),
    pytest.param(lambda c: [*CONDENSE_DM, "--set", "lr_img=abc"],
                 "lr_img: expected a finite number > 0, got 'abc'", id="cli-setting-not-a-number"),
    pytest.param(lambda c: ["condense", "digits", "--preset", "quick", "--set", "num_experts=1",
                            "--experts", str(tampered_store(c, weights=flip_middle))],
                 "experts.safetensors': sha256 .* does not match", id="cli-experts-flipped-byte"),
    pytest.param(lambda c: [*CONDENSE_DM, "--out", str(a_file(c))],
                 "--out: .*a-file' cannot be a folder", id="cli-out-is-a-file"),
    pytest.param(lambda c: ["pretrain", "--num", "1", "--epochs", "1", "--width", "8", "--out", str(c.guard(c.store()))],
                 "out: .* already holds an expert store; pass overwrite=True", id="cli-pretrain-over-store"),
    pytest.param(lambda c: ["pretrain", "--num", "1", "--epochs", "1", "--width", "8", "--out", str(a_file(c))],
                 "out: .*a-file' cannot be a folder", id="cli-pretrain-out-is-a-file"),
    pytest.param(lambda c: ["pretrain", "cifar10", "--root", str(cifar_folder(c, lambda b: evil_pickle(c)))],
                 r"data_batch_2: refusing to load global posix\.mkdir", id="cli-cifar-pickled-code"),
    pytest.param(lambda c: ["evaluate", str(result_with(c, lambda c, b: half(b))), "--runs", "1", "--epochs", "1"],
                 r"syn\.pt is not a readable dance_ext result \(truncated or corrupt", id="cli-result-truncated"),
    pytest.param(lambda c: ["evaluate", str(result_with(
        c, lambda c, b: torch_bytes({"format_version": 2, "images": Marker(str(c.marker))}))), "--runs", "1"],
                 r"syn\.pt is not a readable dance_ext result: it holds a pickled posix\.mkdir", id="cli-result-pickled-code"),
    pytest.param(lambda c: ["evaluate", str(c.tmp / "nothing-here")],
                 "path: no condensed set at .*nothing-here", id="cli-result-missing"),
    # values a later step would have replaced by a default, or refused after the work
    pytest.param(lambda c: [*CONDENSE_DM, "--eval-epochs", "-5"],
                 "argument --eval-epochs: expected a positive int, got -5", id="cli-eval-epochs-negative"),
    pytest.param(lambda c: [*CONDENSE_DM, "--eval-epochs", "0"],
                 "argument --eval-epochs: expected a positive int, got 0", id="cli-eval-epochs-zero"),
    pytest.param(lambda c: [*CONDENSE_DM, "--seed", "-1"],
                 "argument --seed: expected an int >= 0, got -1", id="cli-seed-negative"),
    pytest.param(lambda c: [*CONDENSE_DM, "--budget", "2"],
                 r"argument --budget: expected a number in \(0, 1\], got 2", id="cli-budget-over-one"),
    pytest.param(lambda c: [*CONDENSE_DM, "--set", "iterations=10"],
                 "--set iterations: also given as --iterations; give it once", id="cli-set-collides-with-flag"),
    pytest.param(lambda c: [*CONDENSE_DM, "--resume"],
                 r"--resume: needs checkpoint_dir \(--checkpoint-dir\)", id="cli-resume-without-checkpoint-dir"),
    pytest.param(lambda c: [*CONDENSE_DM, "--out", str(dangling_link(c))],
                 "--out: .*gone' cannot be written: .* is a link to a missing", id="cli-out-dangling-link"),
    pytest.param(lambda c: [*CONDENSE_DM, "--checkpoint-dir", str(dangling_link(c))],
                 "--checkpoint-dir: .*gone' cannot be written", id="cli-checkpoint-dir-dangling-link"),
    pytest.param(lambda c: ["condense", str(image_folder_without_test(c)), "--method", "dm", "--preset", "quick",
                            "--iterations", "1"],
                 "--eval-runs: there is nothing to evaluate on .* pass --eval-runs 0", id="cli-folder-without-test-split"),
]


@pytest.mark.parametrize("build,match", CLI_CASES)
def test_cli_hostile_input(build, match, ctx, monkeypatch, capsys):
    assert_cli_refused([*build(ctx), "--no-progress"], ctx, match, lambda: no_work(monkeypatch), monkeypatch, capsys)
