"""The optimisation step of a run: AdamW, the learning-rate schedule, and one step (forward,
loss on the scored positions, backward, clipping, update) run eagerly or replayed from a CUDA graph.
`FoldedAdamW` is the same AdamW for the N runs of a fold (runners/batched.py) at once."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F

from slabench.config import TrainSpec
from slabench.errors import SlabenchError
from slabench.tasks import IGNORE

WSD_DECAY = 0.2  # "wsd" schedule: linear decay to zero over the last 20% of the budget
BETAS, EPS = (0.9, 0.98), 1e-8  # AdamW's, for single runs and folds alike
CLIP_EPS = 1e-6  # clip_grad_norm_'s: coefficient max_norm / (norm + CLIP_EPS)


def make_optimizer(model: torch.nn.Module, cfg: TrainSpec, device: torch.device, capturable: bool = False):
    """AdamW, weight decay on matrices only. capturable: state and lr live on the device (a
    tensor lr, updated in place), so the step can run inside a CUDA graph, and the update is
    torch's fused AdamW: two kernels per step where the foreach form launches about a dozen
    multi-tensor kernels for each of the two parameter groups (~67 us of GPU time a step in a
    profile of a quick-preset step on an H200)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=torch.tensor(cfg.lr, device=device) if capturable else cfg.lr,
        betas=BETAS,
        eps=EPS,
        capturable=capturable,
        fused=True if capturable else None,
    )


class FoldedAdamW:
    """`make_optimizer`'s AdamW and `clip_grad_norm_` for N runs at once, on device, no host sync.

    members[i] is run i's parameter list (every member's shapes alike). Their values move into
    one flat [N, P] buffer, matrices first so that weight decay is a slice; `params` are the
    stacked [N, ...] leaves, views of that buffer, in the members' order. So the update is a
    dozen whole-buffer ops whatever the number of parameters, each member's row with its own
    lr (`lr`, [N], set in place), its own step count and its own clipping norm. `active` [N]
    says which members train: a stopped member's gradient (NaN included) is zeroed and its lr
    and moment updates are off, so its row stays as it was while the shapes stay the same.
    """

    def __init__(self, members: list[list[torch.Tensor]], cfg: TrainSpec):
        first = members[0]
        self.order = sorted(range(len(first)), key=lambda j: first[j].dim() < 2)  # matrices first
        self.sizes = [first[j].numel() for j in self.order]
        self.n_decay = sum(first[j].numel() for j in self.order if first[j].dim() >= 2)
        with torch.no_grad():
            self.flat = torch.stack([torch.cat([ps[j].flatten() for j in self.order]) for ps in members])  # [N, P]
        n, device = len(members), self.flat.device
        views = dict(zip(self.order, self.flat.split(self.sizes, dim=1)))  # [N, numel] each
        self.params = [views[j].view(n, *first[j].shape).detach().requires_grad_() for j in range(len(first))]
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.flat), torch.zeros_like(self.flat)  # [N, P]
        self.steps = torch.zeros(n, 1, device=device)  # [N, 1] updates each member took
        self.lr = torch.zeros(n, device=device)  # [N]
        self.active = torch.ones(n, dtype=torch.bool, device=device)  # [N]
        self.weight_decay, self.grad_clip = cfg.weight_decay, cfg.grad_clip

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        (b1, b2), keep = BETAS, self.active[:, None]  # [N, 1]
        grads = [self.params[j].grad.flatten(1) for j in self.order]
        g = torch.where(keep, torch.cat(grads, dim=1), 0.0)  # [N, P]
        if self.grad_clip > 0:  # clip_grad_norm_ per member: one global norm over its parameters
            norm = torch.linalg.vector_norm(g, dim=1, keepdim=True)  # [N, 1]
            g.mul_((self.grad_clip / (norm + CLIP_EPS)).clamp(max=1.0))
        self.steps.add_(keep)
        lr = self.lr[:, None] * keep  # [N, 1]
        self.flat[:, : self.n_decay].mul_(1 - lr * self.weight_decay)
        self.exp_avg.lerp_(g, torch.where(keep, 1 - b1, 0.0))
        self.exp_avg_sq.mul_(torch.where(keep, b2, 1.0)).addcmul_(g, g, value=1 - b2)
        step_size = lr / (1 - b1**self.steps)  # [N, 1]
        denom = (self.exp_avg_sq.sqrt() / (1 - b2**self.steps).sqrt()).add_(EPS)  # [N, P]
        self.flat.sub_(torch.div(self.exp_avg, denom, out=denom).mul_(step_size))

    @torch.no_grad()
    def load_member(self, i: int, params: list[torch.Tensor]) -> None:
        """Copy member i's current values into `params` (a model's, in the members' order)."""
        for j, value in zip(self.order, self.flat[i].split(self.sizes)):
            params[j].copy_(value.view_as(params[j]))


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits [B, T, V], labels [B, T] -> mean cross-entropy over the scored positions."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def scored_positions(labels: torch.Tensor, k: int | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """labels [B, T] -> (positions [B, k], their labels [B, k]): every scored position of each row,
    padded with unscored ones, when no row has more than k (the task's `scored_per_row`).

    The model then computes its head and loss at k positions instead of T. MQAR scores one in
    eight to one in sixteen positions, and with an 8192-token vocabulary the head's logits at
    every position are a step's largest tensors (537M logits at batch 256, T 256). The loss is
    the same mean over the same positions; k is fixed, and topk needs no host sync, so a CUDA
    graph captures it. k None, or not below T: (None, labels), every position."""
    if k is None or k >= labels.shape[-1]:
        return None, labels
    positions = labels.ne(IGNORE).float().topk(k, dim=-1, sorted=False).indices  # [B, k]
    return positions, labels.gather(-1, positions)


def lr_at(cfg: TrainSpec, progress: float) -> float:
    """The learning rate at `progress` (fraction of the budget): linear warmup, then the schedule."""
    if progress < cfg.warmup:
        return cfg.lr * progress / cfg.warmup
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (progress - cfg.warmup) / (1 - cfg.warmup)))
    if cfg.schedule == "wsd" and progress > 1 - WSD_DECAY:
        return cfg.lr * (1 - progress) / WSD_DECAY
    return cfg.lr


class CapturedStep:
    """A training step, `step(inputs, labels) -> loss` (device tensors, not synced), run on
    `path` 'eager' (op by op) or 'cuda-graph'. Subclasses give `_step` and `_zero_grad`.

    'cuda-graph': at synthetic-task sizes the step is launch-bound (fla's chunk kernels spend
    ~80% of their time in launches), so the whole step is captured once and replayed
    (PyTorch's whole-network capture recipe). The first GRAPH_WARMUP calls are real training
    steps run eagerly on a side stream: dispatch probes, Triton autotuning and lazy
    initialisation all happen there, never inside the capture. The next call copies its batch
    into static buffers, captures, and replays; later calls copy and replay. Shapes must not
    change between calls; whatever else varies (the lr) lives in device tensors updated in
    place. If capture fails, the step falls back to eager for the rest of the run and
    `fallback` keeps the reason.
    """

    GRAPH_WARMUP = 3

    def __init__(self, device: torch.device, autocast: torch.dtype | None, path: str, scored: int | None = None):
        if path not in ("eager", "cuda-graph"):
            raise SlabenchError(f"train_path={path!r} is not allowed; choose one of 'auto', 'eager', 'cuda-graph'")
        if path == "cuda-graph" and device.type != "cuda":
            raise SlabenchError(f"train_path='cuda-graph' needs a CUDA device, not {device.type!r}")
        self.device, self.autocast, self.scored = device, autocast, scored  # scored: `scored_positions`' k
        self.path, self.fallback = path, None
        self.calls, self.graph, self.static = 0, None, None

    def _step(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _zero_grad(self) -> None:
        raise NotImplementedError

    def autocast_context(self) -> AbstractContextManager:
        # Autocast's weight-cast cache must be off under capture (PyTorch's CUDA-graph notes).
        return torch.autocast(
            self.device.type,
            dtype=self.autocast,
            enabled=self.autocast is not None,
            cache_enabled=False if self.path == "cuda-graph" else None,
        )

    def _capture(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        static_inputs, static_labels = inputs.clone(), labels.clone()
        self._zero_grad()  # backward allocates .grad from the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_loss = self._step(static_inputs, static_labels)
        self.graph, self.static = graph, (static_inputs, static_labels, static_loss)

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.path == "eager":
            return self._step(inputs, labels)
        if self.graph is None and self.calls <= self.GRAPH_WARMUP:
            side, current = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
            side.wait_stream(current)
            with torch.cuda.stream(side):
                loss = self._step(inputs, labels)
            current.wait_stream(side)
            return loss
        if self.graph is None:
            try:
                self._capture(inputs, labels)
            except Exception as e:
                torch.cuda.synchronize(self.device)
                self.path, self.fallback = "eager", f"capture failed: {type(e).__name__}: {str(e)[:200]}"
                self.graph, self.static = None, None
                return self._step(inputs, labels)
        static_inputs, static_labels, static_loss = self.static
        static_inputs.copy_(inputs)
        static_labels.copy_(labels)
        self.graph.replay()
        return static_loss


class TrainStep(CapturedStep):
    """One optimizer step of one model: `step(inputs [B, T], labels [B, T]) -> loss`: forward,
    backward, gradient clipping and AdamW step. On 'cuda-graph' clipping (foreach, on device)
    and the capturable AdamW step are in the graph; lr is a device tensor updated in place."""

    def __init__(
        self,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        cfg: TrainSpec,
        device: torch.device,
        autocast: torch.dtype | None,
        path: str,
        scored: int | None = None,
    ):
        super().__init__(device, autocast, path, scored)
        self.model, self.opt, self.cfg = model, opt, cfg

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)  # in place: the captured step reads this tensor
            else:
                group["lr"] = lr

    def _zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def _step(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        positions, labels = scored_positions(labels, self.scored)  # [B, k] each, or None and [B, T]
        with self.autocast_context():
            logits = self.model(inputs, positions)  # [B, k or T, V]
        loss = token_loss(logits, labels)
        self._zero_grad()
        loss.backward()
        if self.cfg.grad_clip > 0:
            foreach = True if self.path == "cuda-graph" else None  # on device, no sync
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip, foreach=foreach)
        self.opt.step()
        return loss
