"""The optimisation step of a run: AdamW, the learning-rate schedule, and one step (forward,
loss on the scored positions, backward, clipping, update) run eagerly or replayed from a CUDA graph."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from slabench.config import TrainSpec
from slabench.errors import SlabenchError
from slabench.tasks import IGNORE

WSD_DECAY = 0.2  # "wsd" schedule: linear decay to zero over the last 20% of the budget


def make_optimizer(model: torch.nn.Module, cfg: TrainSpec, device: torch.device, capturable: bool = False):
    """AdamW, weight decay on matrices only. capturable: state and lr live on the device (a
    tensor lr, updated in place), so the step can run inside a CUDA graph."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=torch.tensor(cfg.lr, device=device) if capturable else cfg.lr,
        betas=(0.9, 0.98),
        capturable=capturable,
        foreach=True if capturable else None,
    )


def lr_at(cfg: TrainSpec, progress: float) -> float:
    """The learning rate at `progress` (fraction of the budget): linear warmup, then the schedule."""
    if progress < cfg.warmup:
        return cfg.lr * progress / cfg.warmup
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (progress - cfg.warmup) / (1 - cfg.warmup)))
    if cfg.schedule == "wsd" and progress > 1 - WSD_DECAY:
        return cfg.lr * (1 - progress) / WSD_DECAY
    return cfg.lr


class TrainStep:
    """One optimizer step: `step(inputs [B, T], labels [B, T]) -> loss` (a device tensor, not synced).

    path 'eager': forward, backward, gradient clipping and AdamW step, op by op.
    path 'cuda-graph': at synthetic-task sizes the step is launch-bound (fla's chunk kernels
    spend ~80% of their time in launches), so the whole step is captured once and replayed
    (PyTorch's whole-network capture recipe). The first GRAPH_WARMUP calls are real training
    steps run eagerly on a side stream: dispatch probes, Triton autotuning and lazy
    initialisation all happen there, never inside the capture. The next call copies its batch
    into static buffers, captures, and replays; later calls copy and replay. Shapes must not
    change between calls. Clipping (foreach, on device) and the capturable AdamW step are in
    the graph; lr is a device tensor updated in place. If capture fails, the step falls back to
    eager for the rest of the run and `fallback` keeps the reason.
    """

    GRAPH_WARMUP = 3

    def __init__(
        self,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        cfg: TrainSpec,
        device: torch.device,
        autocast: torch.dtype | None,
        path: str,
    ):
        if path not in ("eager", "cuda-graph"):
            raise SlabenchError(f"train_path={path!r} is not allowed; choose one of 'auto', 'eager', 'cuda-graph'")
        if path == "cuda-graph" and device.type != "cuda":
            raise SlabenchError(f"train_path='cuda-graph' needs a CUDA device, not {device.type!r}")
        self.model, self.opt, self.cfg, self.device, self.autocast = model, opt, cfg, device, autocast
        self.path, self.fallback = path, None
        self.calls, self.graph, self.static = 0, None, None

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)  # in place: the captured step reads this tensor
            else:
                group["lr"] = lr

    def _step(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Autocast's weight-cast cache must be off under capture (PyTorch's CUDA-graph notes).
        with torch.autocast(
            self.device.type,
            dtype=self.autocast,
            enabled=self.autocast is not None,
            cache_enabled=False if self.path == "cuda-graph" else None,
        ):
            logits = self.model(inputs)  # [B, T, V]
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            foreach = True if self.path == "cuda-graph" else None  # on device, no sync
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip, foreach=foreach)
        self.opt.step()
        return loss

    def _capture(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        static_inputs, static_labels = inputs.clone(), labels.clone()
        self.opt.zero_grad(set_to_none=True)  # backward allocates .grad from the graph's pool
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
