"""DANCE expert pretraining (docs/ALGORITHMS.md §3.3), the on-disk expert store and the
resident expert pool used for middle encoders (§3.6).

Store layout (one folder):

* ``experts.safetensors``: tensors ``init.{i}.{name}`` (the parameters straight after
  construction, PyTorch default init) and ``trained.{i}.{name}`` (after the last
  epoch), for expert i and every ``named_parameters()`` name. Buffers are not stored:
  DANCE's interpolation ignores them and the ConvNet (instance norm) has none.
* ``manifest.json``: format version, dataset facts, network spec, training settings,
  per-expert test accuracy and seconds, the sha256 of the safetensors file.

Both files are first written completely to temporary files in the same folder, then
renamed into place with ``os.replace``, manifest last (an old manifest is removed just
before), so an interrupted run leaves either the old store, or no manifest (which
``ExpertPool.load`` refuses), never a half-written store that loads.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from .augment_params import PRETRAIN_STRATEGY
from .checks import hw, positive_int
from .data import as_class_data
from .files import sha256_file, write_files
from .folders import check_output_dir
from .models import build_network, flatten_parameters_, network_spec
from .progress import progress_bar
from .training import accuracy, train_epoch
from .utils import derive_seed, make_generator, resolve_device, seeded_network
from .version import __version__

FORMAT = "dance_ext.experts"
FORMAT_VERSION = 1
WEIGHTS_FILE = "experts.safetensors"
MANIFEST_FILE = "manifest.json"
MOMENTUM, WEIGHT_DECAY, GAMMA, CUTMIX_P = 0.9, 5e-4, 0.2, 0.5
_SEED_TAG = 2  # keeps pretraining streams apart from other users of derive_seed


def pretrain_experts(train, num: int = 5, epochs: int = 60, out: str = "experts/", arch: str = "convnet",
                     test=None, seed: int = 0, device=None, batch_size: int = 64, lr: float = 0.01,
                     width: int = 128, depth: int | None = None, progress: bool = True,
                     overwrite: bool = False) -> "ExpertPool":
    """Pretrain ``num`` experts on ``train`` and store them in the folder ``out``.

    Per expert i (DANCE ``pretrain.py``): a fresh network seeded from (seed, i); SGD lr
    ``lr``, momentum 0.9, wd 5e-4; MultiStepLR [2E//3, 5E//6] γ 0.2 per epoch; every
    epoch one shuffled pass over the whole train set in batches of ``batch_size``; DSA
    ``color_crop`` per sample (IDC convention) under no_grad, CutMix with p 0.5. The
    test accuracy on ``test`` (default: the test split when ``train`` is a dataset name,
    else none) is measured at the end. ``train``/``test``: anything
    ``data.as_class_data`` accepts. An existing store in ``out`` is kept unless
    ``overwrite=True``. Returns the loaded :class:`ExpertPool`.
    """
    for name, value in (("num", num), ("epochs", epochs), ("batch_size", batch_size)):
        positive_int(name, value)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    derive_seed(seed)  # validates seed
    out = os.fspath(out)
    check_output_dir(out, "out")
    if not overwrite and any(os.path.exists(os.path.join(out, f)) for f in (WEIGHTS_FILE, MANIFEST_FILE)):
        raise FileExistsError(f"out: {out!r} already holds an expert store; pass overwrite=True to replace it")
    device = resolve_device(device)
    data = as_class_data(train, split="train", device=device)
    if test is None and isinstance(train, str):
        test = train
    test_data = as_class_data(test, split="test", device=device) if test is not None else None
    if test_data is not None and (test_data.channels, test_data.num_classes) != (data.channels, data.num_classes):
        raise ValueError(f"test: expected {data.channels} channels and {data.num_classes} classes like train, "
                         f"got {test_data.channels} and {test_data.num_classes}")
    settings = {"network": network_spec(arch, data.channels, data.num_classes, data.image_size, width, depth),
                "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    tensors: dict[str, torch.Tensor] = {}
    records = [_train_expert(i, settings, data, test_data, tensors, device, progress)
               for i in progress_bar(range(num), desc="experts", disable=not progress)]
    _refuse_failed_training(tensors, records, data.num_classes)
    weights = save_safetensors(tensors)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "dataset": data.name, "data_sha256": data.content_sha256(), "num_classes": data.num_classes,
        "channels": data.channels, "image_size": list(hw(data.image_size)),
        "mean": list(map(float, data.mean)), "std": list(map(float, data.std)),
        "num_experts": num, **settings, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
        "milestones": _milestones(epochs), "gamma": GAMMA, "strategy": PRETRAIN_STRATEGY, "cutmix_p": CUTMIX_P,
        "experts": records, "weights_file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest(),
        "dance_ext_version": __version__, "torch_version": torch.__version__,
    }
    write_files(out, {WEIGHTS_FILE: weights, MANIFEST_FILE: json.dumps(manifest, indent=2).encode()},
                last=MANIFEST_FILE)
    return ExpertPool.load(out, device=device)


def _refuse_failed_training(tensors: dict, records: list, num_classes: int) -> None:
    """Nothing is stored from a pretraining that diverged or learned nothing."""
    broken = sorted({k.split(".")[1] for k, t in tensors.items() if not bool(torch.isfinite(t).all())})
    if broken:
        raise ValueError(f"lr: experts {', '.join(broken)} ended with NaN or inf weights (training diverged); "
                         "lower lr; nothing was written")
    chance = 100.0 / num_classes
    stuck = [r["index"] for r in records if r["test_accuracy"] is not None and r["test_accuracy"] <= chance + 1e-9]
    if stuck:
        raise ValueError(f"epochs: experts {stuck} reached only chance test accuracy ({chance:.1f} %); train longer "
                         "(epochs) or check lr and the data; nothing was written")


def _milestones(epochs: int) -> list[int]:
    return [2 * epochs // 3, 5 * epochs // 6]


def _train_expert(i: int, settings: dict, data, test_data, tensors: dict, device, progress: bool) -> dict:
    """Train expert ``i``; its initial and trained parameters go into ``tensors``."""
    start, seed, epochs = time.perf_counter(), settings["seed"], settings["epochs"]
    model = seeded_network(lambda: build_network(settings["network"]), derive_seed(seed, _SEED_TAG, i, 0), device)
    for name, p in model.named_parameters():
        tensors[f"init.{i}.{name}"] = p.detach().to("cpu", copy=True).contiguous()
    gen = make_generator(derive_seed(seed, _SEED_TAG, i, 1))
    opt = torch.optim.SGD(model.parameters(), lr=settings["lr"], momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=_milestones(epochs), gamma=GAMMA)
    images, labels = data.images.to(device), data.labels.to(device)
    bar = progress_bar(range(epochs), desc=f"expert {i}", leave=False, disable=not progress)
    for _ in bar:
        loss = train_epoch(model, opt, images, labels, settings["batch_size"], gen, PRETRAIN_STRATEGY, "idc",
                           CUTMIX_P, data.normalize)
        scheduler.step()
        if progress:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    acc = None
    if test_data is not None:
        acc = accuracy(model, test_data.images, test_data.labels, normalize=data.normalize)
    for name, p in model.named_parameters():
        tensors[f"trained.{i}.{name}"] = p.detach().to("cpu", copy=True).contiguous()
    return {"index": i, "test_accuracy": acc, "train_seconds": time.perf_counter() - start}


def _read_manifest(manifest_path: str) -> dict:
    """The parsed manifest, with the fields ``ExpertPool.load`` relies on type-checked."""
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{manifest_path!r}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_path!r}: not a {FORMAT} manifest (a JSON {type(manifest).__name__}, "
                         "expected an object)")
    missing = [k for k in ("format", "format_version", "network", "num_experts", "sha256") if k not in manifest]
    if missing or manifest["format"] != FORMAT:
        raise ValueError(f"{manifest_path!r}: not a {FORMAT} manifest (missing keys {missing})")
    if manifest["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{manifest_path!r}: format version {manifest['format_version']} is not supported "
                         f"(this dance_ext reads version {FORMAT_VERSION})")
    num, weights = manifest["num_experts"], manifest.get("weights_file", WEIGHTS_FILE)
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"{manifest_path!r}: num_experts: expected a positive int, got {num!r}")
    if not isinstance(manifest["network"], dict) or not isinstance(manifest["sha256"], str):
        raise ValueError(f"{manifest_path!r}: expected 'network' to be an object and 'sha256' a string")
    # a bare file name: a manifest must not point outside its own folder
    if not isinstance(weights, str) or os.path.basename(weights) != weights or weights in ("", ".", ".."):
        raise ValueError(f"{manifest_path!r}: weights_file: expected a file name in the store's folder, "
                         f"got {weights!r}")
    return manifest


def _build(spec: dict, device) -> torch.nn.Module:
    # its init is overwritten anyway; a private seed keeps the caller's global RNG untouched
    return seeded_network(lambda: build_network(spec), 0, device)


class ExpertPool:
    """The experts of a store, resident on one device as two contiguous (E, P) tensors,
    ``init_flat`` and ``trained_flat``, in ``models.flatten_parameters_`` order."""

    def __init__(self, path: str, manifest: dict, init_flat: torch.Tensor, trained_flat: torch.Tensor):
        self.path, self.manifest = path, manifest
        self.spec = manifest["network"]
        self.num_experts = init_flat.shape[0]
        self.init_flat, self.trained_flat = init_flat, trained_flat
        self.device = init_flat.device

    def __repr__(self) -> str:
        return (f"ExpertPool({self.path!r}, dataset={self.manifest.get('dataset')!r}, experts={self.num_experts}, "
                f"params={self.init_flat.shape[1]}, device={self.device})")

    @classmethod
    def load(cls, path, device=None) -> "ExpertPool":
        """Load and verify the store in the folder ``path`` (file presence, sha256, tensor
        names and shapes against the manifest's network spec)."""
        path = os.fspath(path)
        device = resolve_device(device)
        manifest_path = os.path.join(path, MANIFEST_FILE)
        if not os.path.isfile(manifest_path):
            raise FileNotFoundError(f"{path!r}: no {MANIFEST_FILE}; not an expert store, or an interrupted "
                                    f"pretraining (rerun pretrain_experts)")
        manifest = _read_manifest(manifest_path)
        weights_path = os.path.join(path, manifest.get("weights_file", WEIGHTS_FILE))
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"{path!r}: {MANIFEST_FILE} is there but {os.path.basename(weights_path)} "
                                    f"is missing")
        digest = sha256_file(weights_path)
        if digest != manifest["sha256"]:
            raise ValueError(f"{weights_path!r}: sha256 {digest} does not match the manifest's "
                             f"{manifest['sha256']}; the file is corrupt, truncated or from another store")
        try:
            tensors = load_file(weights_path, device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{weights_path!r}: unreadable safetensors file ({exc})") from exc

        num = manifest["num_experts"]
        try:
            model = _build(manifest["network"], device)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{manifest_path!r}: its network spec cannot be built ({exc})") from exc
        shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        expected = {f"{kind}.{i}.{name}" for kind in ("init", "trained") for i in range(num) for name in shapes}
        if set(tensors) != expected:
            extra, lost = sorted(set(tensors) - expected), sorted(expected - set(tensors))
            raise ValueError(f"{weights_path!r}: tensor names do not match the manifest's network and "
                             f"{num} experts (missing {lost[:5]}, unexpected {extra[:5]})")
        if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
            raise ValueError(f"{weights_path!r}: holds NaN or inf weights; these experts cannot serve "
                             "condensation (pretrain them again)")
        for key, t in tensors.items():
            name = key.split(".", 2)[2]
            if tuple(t.shape) != shapes[name]:
                raise ValueError(f"{weights_path!r}: tensor {key!r} has shape {tuple(t.shape)}, the network "
                                 f"spec expects {shapes[name]}")
        # copying into the params (views of flat) puts every expert in flatten_parameters_ order
        flat = flatten_parameters_(model)
        params = dict(model.named_parameters())
        init_flat = torch.empty(num, flat.numel(), dtype=flat.dtype, device=device)
        trained_flat = torch.empty_like(init_flat)
        with torch.no_grad():
            for i in range(num):
                for kind, dest in (("init", init_flat), ("trained", trained_flat)):
                    for name, p in params.items():
                        p.copy_(tensors[f"{kind}.{i}.{name}"])
                    dest[i].copy_(flat)
        return cls(path, manifest, init_flat, trained_flat)

    def new_model(self, device=None):
        """A frozen network of the store's spec whose parameters are views of the returned
        flat buffer (holding expert 0's trained weights)."""
        device = self.device if device is None else torch.device(device)
        model = _build(self.spec, device).to(dtype=self.init_flat.dtype)
        flat = flatten_parameters_(model)
        with torch.no_grad():
            flat.copy_(self.trained_flat[0])
        return model, flat

    def _rows(self, k):
        """(init, trained) rows of expert ``k``: views for an int, a gather (no host sync,
        so the range is not checked) for an int64 tensor of one element."""
        if isinstance(k, int) and not isinstance(k, bool):
            if not 0 <= k < self.num_experts:
                raise IndexError(f"k: expert index {k} out of range [0, {self.num_experts})")
            return self.init_flat[k], self.trained_flat[k]
        if not isinstance(k, torch.Tensor) or k.dtype != torch.int64 or k.numel() != 1:
            raise ValueError(f"k: expected an int or a one-element int64 tensor, got "
                             f"{k.dtype if isinstance(k, torch.Tensor) else type(k).__name__}")
        index = k.reshape(1).to(self.device, non_blocking=True)
        return self.init_flat.index_select(0, index)[0], self.trained_flat.index_select(0, index)[0]

    def _check_out(self, flat_out: torch.Tensor) -> None:
        if (not isinstance(flat_out, torch.Tensor) or flat_out.shape != (self.init_flat.shape[1],)
                or flat_out.device != self.device or flat_out.dtype != self.init_flat.dtype):
            raise ValueError(f"flat_out: expected a ({self.init_flat.shape[1]},) {self.init_flat.dtype} tensor on "
                             f"{self.device}, got {getattr(flat_out, 'shape', type(flat_out).__name__)}")

    @torch.no_grad()
    def middle_(self, flat_out: torch.Tensor, k, lam) -> torch.Tensor:
        """θ_mid = λ·θ_init + (1−λ)·θ_trained of expert ``k`` into ``flat_out``, as one
        ``lerp(trained, init, λ)`` (λ = 0: the expert, λ = 1: its initialisation).
        ``k``: an int or a one-element int64 tensor; ``lam``: a float or a one-element
        float tensor, best on the pool's device (then nothing waits for the host)."""
        self._check_out(flat_out)
        init, trained = self._rows(k)
        if isinstance(lam, torch.Tensor):
            lam = lam.reshape(()).to(self.device, self.init_flat.dtype, non_blocking=True)
        return torch.lerp(trained, init, lam, out=flat_out)

    @torch.no_grad()
    def expert_(self, flat_out: torch.Tensor, k) -> torch.Tensor:
        """Copy expert ``k``'s trained weights into ``flat_out``."""
        self._check_out(flat_out)
        return flat_out.copy_(self._rows(k)[1])

    def check_compatible(self, channels: int, num_classes: int, image_size) -> None:
        """Raise when the store's experts cannot serve a dataset of this shape."""
        have = (self.manifest.get("channels"), self.manifest.get("num_classes"),
                tuple(self.manifest.get("image_size") or ()))
        want = (channels, num_classes, hw(image_size))
        if have != want:
            raise ValueError(f"experts: the store {self.path!r} (dataset {self.manifest.get('dataset')!r}) holds "
                             f"experts for channels={have[0]}, num_classes={have[1]}, image_size={have[2]}, but "
                             f"channels={want[0]}, num_classes={want[1]}, image_size={want[2]} were expected; "
                             f"pretrain experts on this dataset")


def as_expert_pool(experts, data_shape: tuple, device=None) -> ExpertPool:
    """The ``experts`` argument of condense/herding as a pool: an ExpertPool as given, or
    the store at a path, checked against ``data_shape`` = (channels, num_classes, image_size)."""
    if isinstance(experts, (str, os.PathLike)):
        experts = ExpertPool.load(experts, device=device)
    if not isinstance(experts, ExpertPool):
        raise TypeError(f"experts: expected None, a path to an expert store or an ExpertPool, "
                        f"got {type(experts).__name__}")
    experts.check_compatible(*data_shape)
    return experts


# ---- reuse: the one policy for the cache of condense() and the stores of the recipes ------------
def cache_root() -> Path:
    return Path(os.environ.get("DANCE_EXT_CACHE", Path.home() / ".cache" / "dance_ext"))


def cached_store(data, settings: dict) -> Path:
    """The cache folder for experts of ``settings`` on ``data`` (content-addressed)."""
    key = json.dumps({"data": data.content_sha256(), **settings}, sort_keys=True, default=str)
    return cache_root() / "experts" / f"{data.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def obtain_experts(store, data, *, num: int, epochs: int, batch_size: int, arch: str, width: int,
                   depth: int | None, seed: int, device, progress: bool, test=None) -> ExpertPool:
    """The experts in ``store`` when they were pretrained on ``data`` with these settings,
    else pretrained there now (``test``: held-out data, or a function giving it, loaded only
    then). A store of other settings is refused, never silently used."""
    store = Path(store)
    wanted = {"num_experts": num, "epochs": epochs, "batch_size": batch_size, "seed": seed,
              "network": network_spec(arch, data.channels, data.num_classes, data.image_size, width, depth),
              "data_sha256": data.content_sha256()}
    if not (store / MANIFEST_FILE).exists():
        return pretrain_experts(data, num=num, epochs=epochs, out=store, arch=arch, seed=seed,
                                test=test() if callable(test) else test,
                                device=device, batch_size=batch_size, width=width, depth=depth,
                                progress=progress, overwrite=True)
    pool = ExpertPool.load(store, device=device)
    differ = sorted(k for k, v in wanted.items() if pool.manifest.get(k) != v)
    if differ:
        raise ValueError(f"experts: {store} holds experts of other settings ({', '.join(differ)} differ); "
                         f"choose another folder or remove it")
    return pool
