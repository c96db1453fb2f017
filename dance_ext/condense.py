"""The DM and DANCE condensation loops, batched over classes (docs/ALGORITHMS.md §1.3, §3.5).

All classes go through one forward/backward per phase with per-class augmentation rows
and the per-class MMD in one op. DANCE's official loop takes one SGD step per class;
since every class's loss depends only on its own images, the batched loop reproduces
that sequence exactly by applying, per class, the zero-gradient momentum "tails" that
the other classes' steps cause (§3.7). Inside an iteration there is no host sync, no
disk I/O and no parameter gradient: all randomness comes from one generator on the
device, and networks are frozen.
"""
from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from . import ops
from .augment_params import sample_params
from .data import ClassData
from .models import default_init_bounds, flatten_parameters_, get_network, reinit_
from .presets import CondenseConfig
from .progress import progress_bar, write
from .signals import stop_on_signals
from .synthetic import decode, initial_images
from .utils import random_rows

AUTOCAST_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def tf32_mode(enabled: bool):
    """TF32 for CUDA matmuls and convolutions while the loop runs; the global flags are restored."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@dataclass
class Draws:
    """Every random choice of one outer iteration, shared by the batched loop and the
    sequential reference implementation in the tests."""
    real_index: torch.Tensor                 # (C, n_real) dataset indices
    inner_params: torch.Tensor               # (C, 13) one augmentation row per class
    inner_pick: torch.Tensor | None          # (C, n_syn) decoded images used, None: all
    calib_params: list[torch.Tensor] = field(default_factory=list)
    calib_pick: list[torch.Tensor | None] = field(default_factory=list)
    expert: torch.Tensor | None = None       # (1,) int64, DANCE
    lam: torch.Tensor | None = None          # (1,) λ of the middle encoder, DANCE
    network_noise: torch.Tensor | None = None  # U[0,1) per parameter of DM's fresh network


def class_block(config: CondenseConfig, device: torch.device, num_classes: int, world_size: int | None) -> int:
    """Classes per group of network calls (``world_size`` None: not distributed). Calls
    never mix two groups and ranks own whole groups, so with a fixed group size a class's
    results do not depend on the world size. A conv's bits depend on its batch size, so
    distributed CPU runs default to one class per group: bit-identical for any world size
    (including a one-process --distributed run), at little cost where images are large
    enough that calls are chunked by memory anyway. A single process defaults to one
    group (fewest calls); distributed CUDA runs to a rank's share (bits there also depend
    on cuDNN's algorithm choice)."""
    if config.class_block is not None:
        return config.class_block
    if world_size is None:
        return num_classes
    return 1 if device.type == "cpu" else -(-num_classes // world_size)


class Condenser:
    """State and step of one DM or DANCE run on class-indexed data ``data`` (already on
    the run's device), for the classes in ``classes`` (default: all; a rank's slice under
    torch.distributed). Randomness is drawn for every class and sliced, so a class's
    result does not depend on which other classes this process holds."""

    def __init__(self, data: ClassData, config: CondenseConfig, generator: torch.Generator, pool=None,
                 classes: range | None = None, block: int | None = None):
        self.data, self.config, self.gen, self.pool = data, config, generator, pool
        self.device, self.dtype = data.images.device, data.images.dtype
        self.num_classes = data.num_classes
        self.classes = range(self.num_classes) if classes is None else classes
        self.mine = slice(self.classes.start, self.classes.stop)
        self.local_classes = len(self.classes)
        self.block = block or class_block(config, self.device, self.num_classes, None)
        self.pixel_space = config.method == "dance"
        table, counts = data.class_index_table()
        self.table = table.to(self.device)
        self.n_real = min(config.batch_real, int(counts.min()))
        self.real = data.normalize(data.images)

        syn = initial_images(data, config.ipc, config.init, config.factor, generator, self.pixel_space)
        self.syn = syn[self.mine.start * config.ipc:self.mine.stop * config.ipc].clone().requires_grad_(True)
        self.momentum_buffer = torch.zeros_like(self.syn)
        self.n_decoded = config.ipc * config.factor ** 2
        self.n_syn = min(self.n_decoded, config.batch_syn_max) if config.method == "dance" else self.n_decoded
        self._build_networks()
        self._build_tails()
        self.iteration = 0
        self.history: list[dict] = []  # one row of losses per log interval (_log_row)
        # the losses summed on the device since the last log row: means without a host sync per step
        self.loss_sum = torch.zeros(2, device=self.device, dtype=self.dtype)
        self.loss_count = 0

    # ---- setup -------------------------------------------------------------------
    def _build_networks(self) -> None:
        c, data = self.config, self.data
        if c.method == "dance":
            if c.num_experts > self.pool.num_experts:
                raise ValueError(f"num_experts: {c.num_experts} requested but the expert store has "
                                 f"{self.pool.num_experts}; pretrain more or lower num_experts")
            self.encoder, self.encoder_flat = self.pool.new_model(self.device)
            self.expert, self.expert_flat = self.pool.new_model(self.device)
        else:
            self.encoder = get_network(c.arch, data.channels, self.num_classes, data.image_size, c.width, c.depth)
            self.encoder = self.encoder.to(self.device, self.dtype)
            self.encoder_flat = flatten_parameters_(self.encoder)
            self.init_bounds = tuple(b.to(self.device, self.dtype) for b in default_init_bounds(self.encoder))
        batch_norms = [type(m).__name__ for net in (self.encoder, getattr(self, "expert", None)) if net is not None
                       for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if batch_norms:
            raise ValueError(f"arch: the network has {batch_norms[0]} layers, whose outputs depend on the batch; "
                             "the class-batched, memory-chunked loop is exact only for per-sample normalisation "
                             "(e.g. ConvNet's instance norm); choose a network without BatchNorm")
        # parameter rows are sliced to this process's classes; the expert's labels stay global
        local = torch.arange(self.local_classes, device=self.device)
        self.real_class_index = local.repeat_interleave(self.n_real)
        self.syn_class_index = local.repeat_interleave(self.n_syn)
        self.syn_labels = self.syn_class_index + self.classes.start
        self.chunk = self._chunk_size()

    def _chunk_size(self) -> int:
        """Images per network call: the first activation (width × H' × W' floats per image)
        kept under a budget. On the CPU, buffers above ~32 MB are mapped fresh on every call
        and the page faults cost as much as the convolutions."""
        conv = next(m for m in self.encoder.modules() if isinstance(m, torch.nn.Conv2d))
        (height, width), (pad_h, pad_w) = self.data.image_size, conv.padding
        first_map = (height + 2 * pad_h - 2) * (width + 2 * pad_w - 2)
        per_image = self.encoder_flat.element_size() * conv.out_channels * first_map
        budget = (4 << 30) if self.device.type == "cuda" else (32 << 20)
        return max(1, budget // per_image)

    def _build_tails(self) -> None:
        """Per-class coefficients of m zero-gradient SGD steps: p −= lr·buf·Σ_{i=1..m} μ^i, buf ·= μ^m.
        The number of steps depends on a class's global position in the official order."""
        mu, C = self.config.momentum, self.num_classes

        def tail(m: torch.Tensor):
            m = m.to(torch.float64)
            mu_m = torch.full_like(m, mu).pow(m)
            # Σ_{i=1..m} μ^i = μ(1 − μ^m)/(1 − μ); μ = 0 gives 0
            total = mu * (1 - mu_m) / (1 - mu) if mu > 0 else torch.zeros_like(m)
            shape = (self.local_classes, 1, 1, 1, 1)
            return (total[self.mine].to(self.syn.dtype).to(self.device).view(shape),
                    mu_m[self.mine].to(self.syn.dtype).to(self.device).view(shape))

        classes = torch.arange(C)
        self.tail_before = tail(classes)                   # class c waits for c earlier steps
        self.tail_after = tail(C - 1 - classes)            # and C−1−c later ones
        self.tail_between = tail(torch.full((C,), C - 1))  # between its own consecutive steps

    # ---- randomness --------------------------------------------------------------
    def draw(self) -> Draws:
        c, gen, C, dev = self.config, self.gen, self.num_classes, self.device
        real_index = random_rows(self.table, self.n_real, gen)[self.mine]
        size = self.data.image_size

        def rows():
            return sample_params(C, c.dsa_strategy, size, c.dsa_convention, generator=gen, device=dev)[self.mine]

        def pick():
            if self.n_syn == self.n_decoded:
                return None
            keys = torch.rand(C, self.n_decoded, generator=gen, device=gen.device).to(dev)
            return keys.argsort(dim=1)[self.mine, :self.n_syn]

        draws = Draws(real_index=real_index, inner_params=rows(), inner_pick=pick())
        if c.method == "dance":
            for _ in range(c.iter_calib):
                draws.calib_params.append(rows())
                draws.calib_pick.append(pick())
            draws.expert = torch.randint(c.num_experts, (1,), generator=gen, device=gen.device).to(dev)
            lam = torch.rand(1, generator=gen, device=gen.device).to(dev)
            draws.lam = c.lambda_min + (c.lambda_max - c.lambda_min) * lam
        else:
            draws.network_noise = torch.rand(self.encoder_flat.shape, generator=gen, device=gen.device,
                                             dtype=self.dtype).to(dev)
        return draws

    def prepare_networks(self, draws: Draws) -> None:
        """DM: a fresh randomly initialised network; DANCE: the middle encoder and expert k."""
        with torch.no_grad():
            if self.config.method == "dance":
                self.pool.middle_(self.encoder_flat, draws.expert, draws.lam)
                self.pool.expert_(self.expert_flat, draws.expert)
            else:
                # PyTorch's default init is elementwise uniform: one fused op for the whole network
                reinit_(self.encoder_flat, self.init_bounds, uniform=draws.network_noise)

    # ---- the pieces of one step ------------------------------------------------------
    def decoded_normalized(self, pick: torch.Tensor | None) -> torch.Tensor:
        """The class-major synthetic batch fed to the networks, (C·n_syn, ch, H, W)."""
        images = decode(self.syn, self.config.factor) if self.config.factor > 1 else self.syn
        if pick is not None:
            per_class = images.view(self.local_classes, self.n_decoded, *images.shape[1:])
            images = per_class.gather(1, pick.view(*pick.shape, 1, 1, 1).expand(-1, -1, *images.shape[1:]))
            images = images.reshape(-1, *images.shape[2:])
        return self.data.normalize(images) if self.pixel_space else images

    def augment(self, x: torch.Tensor, params: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return ops.siamese_augment(x, params, index, backend=self.config.backend)

    def network(self, net, x: torch.Tensor, features: bool) -> torch.Tensor:
        """Run a network under the optional speed paths; the losses stay in the data's dtype."""
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.config.autocast],
                            enabled=self.config.autocast is not None):
            out = net.embed(x) if features else net(x)
        return out.to(self.dtype)

    def forward_chunked(self, net, images: torch.Tensor, params: torch.Tensor, class_index: torch.Tensor,
                        features: bool) -> torch.Tensor:
        """Augment and run ``net`` over class-major ``images``, one group of ``self.block``
        classes at a time, in chunks of at most ``self.chunk`` images. Samples never
        interact (instance norm), so this is exact, with or without autograd; the chunks
        bound the size of each activation buffer, the groups keep every call's batch the
        same whatever the world size."""
        total = images.shape[0]
        group = self.block * (total // self.local_classes)
        spans = [(i, min(i + self.chunk, start + group, total))
                 for start in range(0, total, group)
                 for i in range(start, min(start + group, total), self.chunk)]
        return torch.cat([self.network(net, self.augment(images[i:j], params, class_index[i:j]), features)
                          for i, j in spans])

    def inner_loss(self, draws: Draws) -> torch.Tensor:
        """Σ_c ‖mean φ(A_c(real_c)) − mean φ(A_c(syn_c))‖², one augmentation row per class."""
        C = self.local_classes
        with torch.no_grad():
            real = self.real[draws.real_index.reshape(-1)]
            f_real = self.forward_chunked(self.encoder, real, draws.inner_params, self.real_class_index, True)
        syn = self.decoded_normalized(draws.inner_pick)
        f_syn = self.forward_chunked(self.encoder, syn, draws.inner_params, self.syn_class_index, True)
        return ops.class_mean_mmd(f_real.view(C, self.n_real, -1), f_syn.view(C, self.n_syn, -1),
                                  backend=self.config.backend)

    def calib_loss(self, params: torch.Tensor, pick: torch.Tensor | None) -> torch.Tensor:
        """Σ_c mean cross-entropy of the trained expert on class c's synthetic images."""
        syn = self.decoded_normalized(pick)
        logits = self.forward_chunked(self.expert, syn, params, self.syn_class_index, False)
        return F.cross_entropy(logits, self.syn_labels, reduction="sum") / self.n_syn

    # ---- SGD with momentum, per class ----------------------------------------------------
    def _apply_tail(self, tail) -> None:
        total, decay = tail
        p = self.syn.view(self.local_classes, -1, *self.syn.shape[1:])
        buf = self.momentum_buffer.view_as(p)
        p.sub_(self.config.lr_img * total * buf)
        buf.mul_(decay)

    def _gradient_step(self, loss: torch.Tensor) -> None:
        (grad,) = torch.autograd.grad(loss, self.syn)
        with torch.no_grad():
            self.momentum_buffer.mul_(self.config.momentum).add_(grad)
            self.syn.sub_(self.config.lr_img * self.momentum_buffer)

    def step(self, draws: Draws) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One outer iteration; returns the (detached) inner and calibration losses."""
        self.prepare_networks(draws)
        if self.config.method == "dm":
            loss = self.inner_loss(draws)
            self._gradient_step(loss)
            self.iteration += 1
            return loss.detach(), None
        with torch.no_grad():
            self.syn.clamp_(0, 1)
            self._apply_tail(self.tail_before)
        inner = self.inner_loss(draws)
        self._gradient_step(inner)
        calib_total = None
        for params, pick in zip(draws.calib_params, draws.calib_pick):
            with torch.no_grad():
                self._apply_tail(self.tail_between)
            calib = self.calib_loss(params, pick)
            self._gradient_step(calib)
            calib_total = calib.detach() if calib_total is None else calib_total + calib.detach()
        with torch.no_grad():
            self._apply_tail(self.tail_after)
        self.iteration += 1
        return inner.detach(), calib_total

    def view(self) -> torch.Tensor:
        """The current synthetic set in [0, 1] pixel space, detached: the images themselves
        where they are optimised in pixel space (DANCE), not to be modified; DM's are
        denormalised into a new tensor."""
        syn = self.syn.detach()
        return syn if self.pixel_space else self.data.denormalize(syn)

    def images(self) -> torch.Tensor:
        """A copy of the synthetic set in [0, 1] pixel space (unclamped, as the official code saves it)."""
        return self.view().clone() if self.pixel_space else self.view()

    # ---- the run ----------------------------------------------------------------------
    def run(self, iterations: int, on_log: Callable[[dict], None] | None = None,
            on_checkpoint: Callable[["Condenser"], object] | None = None, checkpoint_every: int | None = None,
            progress: bool = False) -> None:
        """Step until ``iterations`` are done. Every ``log_every`` iterations (and at the
        end) a row of losses is logged (the loop's only host sync): appended to ``history``
        and passed to ``on_log`` with more keys (``_log_row``). Every ``checkpoint_every``
        (default ``log_every``) and at the end ``on_checkpoint`` is called. With
        ``on_checkpoint``, SIGTERM/SIGINT stop the run after the current iteration: a last
        checkpoint is written and the process then ends as the signal asks."""
        log_every, every = self.config.log_every, checkpoint_every or self.config.log_every
        bar = progress_bar(total=iterations, initial=self.iteration, disable=not progress,
                           desc=f"{self.config.method} ipc={self.config.ipc}", unit="it")
        started = time.perf_counter()
        with tf32_mode(self.config.tf32), stop_on_signals(on_checkpoint is not None) as stop:
            while self.iteration < iterations and not stop:
                self._accumulate(*self.step(self.draw()))
                bar.update(1)
                done = self.iteration == iterations
                if self.iteration % log_every == 0 or done:
                    row = self._log_row()
                    self._check_finite(row)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k != "iteration" and v is not None})
                    if on_log is not None:
                        on_log({**row, "seconds": time.perf_counter() - started, "lr": self.config.lr_img,
                                "images": self.view()})
                if on_checkpoint is not None and (self.iteration % every == 0 or done):
                    self._check_finite()  # a diverged state never overwrites the last good checkpoint
                    on_checkpoint(self)
        bar.close()
        if stop:
            where = on_checkpoint(self)
            write(f"dance-ext: {signal.Signals(stop.signal).name} received: iteration {self.iteration} "
                  f"saved to {where}; continue with resume=True (--resume)")
            stop.reraise()

    def _check_finite(self, row: dict | None = None) -> None:
        """Stop a diverged run at the next log or checkpoint interval, naming the likely setting."""
        losses = [v for k, v in (row or {}).items() if k != "iteration" and v is not None]
        if all(math.isfinite(v) for v in losses) and bool(torch.isfinite(self.syn).all()):
            return
        raise ValueError(f"lr_img: the run diverged by iteration {self.iteration} (NaN or inf in the synthetic "
                         f"images or the loss) with lr_img={self.config.lr_img}; lower lr_img (or check the "
                         "experts and the data); the last checkpoint written before it stays")

    def _accumulate(self, inner: torch.Tensor, calib: torch.Tensor | None) -> None:
        self.loss_sum[0] += inner
        if calib is not None:
            self.loss_sum[1] += calib
        self.loss_count += 1

    def _log_row(self) -> dict:
        """Per-class losses as the official log prints them, but each the mean over the
        iterations since the previous row (the official log shows the last iteration's),
        this process's share of the sum over classes (a distributed run sums the shares at
        the end). ``calib_loss`` is None without calibration rounds (DM, iter_calib=0)."""
        inner, calib = (total / (self.loss_count * self.num_classes) for total in self.loss_sum.tolist())
        has_calib = self.config.method == "dance" and self.config.iter_calib > 0
        row = {"iteration": self.iteration, "inner_loss": inner, "calib_loss": calib if has_calib else None}
        self.history.append(row)
        self.loss_sum.zero_()
        self.loss_count = 0
        return row

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a run needs to continue bit-identically, as CPU tensors and plain values."""
        return {"iteration": self.iteration, "syn": self.syn.detach().cpu(),
                "momentum_buffer": self.momentum_buffer.cpu(), "generator": self.gen.get_state(),
                "history": [dict(row) for row in self.history], "loss_sum": self.loss_sum.cpu(),
                "loss_count": self.loss_count}

    def load_state_dict(self, state: dict) -> None:
        for key in ("syn", "momentum_buffer"):
            value = state.get(key)
            if not isinstance(value, torch.Tensor) or value.shape != self.syn.shape:
                raise ValueError(f"checkpoint: {key}: expected a tensor of shape {tuple(self.syn.shape)}, got "
                                 f"{getattr(value, 'shape', type(value).__name__)}")
        with torch.no_grad():
            self.syn.copy_(state["syn"])
            self.momentum_buffer.copy_(state["momentum_buffer"])
        self.gen.set_state(state["generator"])
        self.iteration = int(state["iteration"])
        self.history = [dict(row) for row in state["history"]]
        # checkpoints before interval means: the first row after resuming averages from there
        self.loss_sum.copy_(state.get("loss_sum", torch.zeros(2)))
        self.loss_count = int(state.get("loss_count", 0))
