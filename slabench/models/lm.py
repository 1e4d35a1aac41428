"""The language-model backbone every mixer is trained in.

tokens [B, T] -> embedding (+ learned positions, optional) -> dropout (optional) -> n_layers pre-norm blocks of
[mixer, optional MLP] with residuals -> final RMSNorm -> output head -> logits [B, T, V].

The head is untied by default: measured on MQAR (vocab 64, seq_len 32, 4 pairs, 2-layer d=64
attention, 400 steps of batch 64, lr 1e-3, 2-core CPU), the tied model stalled at 26% accuracy
(the 1/K plateau: it knows the answer is one of the K values but not which), the untied one
reached 100% by step 300. `tie_head=True` gives the tied variant.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from slabench import kernels
from slabench.models.base import Mixer
from slabench.models.norm import RMSNorm


class MLP(nn.Module):
    def __init__(self, d_model: int, ratio: int = 4):
        super().__init__()
        self.up = nn.Linear(d_model, ratio * d_model, bias=False)
        self.down = nn.Linear(ratio * d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        return self.down(torch.nn.functional.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, mixer: Mixer, mlp: bool):
        super().__init__()
        self.norm1, self.mixer = RMSNorm(d_model), mixer
        self.norm2 = RMSNorm(d_model) if mlp else None
        self.mlp = MLP(d_model) if mlp else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        x = x + self.mixer(self.norm1(x))
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x


class LM(nn.Module):
    """A small causal LM around a mixer.

    make_mixer: called with each layer's index (0, 1, ...), returns a fresh `Mixer` (a hybrid stack
    returns different kinds by layer).
    max_len: size of the learned position table when `pos_emb == "learned"`.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_layers: int,
        make_mixer: Callable[[int], Mixer],
        mlp: bool = True,
        pos_emb: str = "none",
        max_len: int = 0,
        tie_head: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model) if pos_emb == "learned" else None
        # Where Zoology puts its dropout (`embed_dropout`, 0.1 in its MQAR runs): on the summed
        # token and position embeddings, before the first block. Its `resid_dropout` is 0 there.
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.blocks = nn.ModuleList(Block(d_model, make_mixer(i), mlp) for i in range(n_layers))
        self.norm = RMSNorm(d_model)
        self.head = None if tie_head else nn.Linear(d_model, vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        # fla's and GPT-2's initialisation: every matrix N(0, 0.02), biases zero. It keeps the
        # token embedding and every block's output on one scale, so layer 2 still sees which
        # token sits where; with PyTorch's default Linear init the embeddings are swamped and
        # recall tasks stall on the 1/K plateau. Mixer parameters that are not Linear/Embedding
        # weights (decay rates, dt biases) keep their own initialisation.
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T, V]; with positions [B, K], only at those: [B, K, V]."""
        x = kernels.embedding(self.embed.weight, tokens)  # [B, T, D]: nn.Embedding's op, a faster backward on CUDA
        if self.pos is not None:
            x = x + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        if self.drop is not None:
            x = self.drop(x)  # identity in eval mode (evaluation calls model.eval())
        for block in self.blocks:
            x = block(x)
        if positions is not None:
            x = x.gather(1, positions[..., None].expand(-1, -1, x.shape[-1]))  # [B, K, D]
        x = self.norm(x)
        return x @ self.embed.weight.T if self.head is None else self.head(x)  # [B, T or K, V]

    @property
    def mixers(self) -> list[Mixer]:
        return [b.mixer for b in self.blocks]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def state_size(self, seq_len: int) -> int | None:
        """Inference state per sequence, summed over layers (elements); None when a mixer (a
        plugin without `state_size`) does not say."""
        sizes = [m.state_size(seq_len) for m in self.mixers]
        return None if None in sizes else sum(sizes)

    def diagnostics(self) -> dict[str, float]:
        """Each mixer's diagnostics, keyed `layer<i>/<name>`."""
        return {f"layer{i}/{k}": v for i, m in enumerate(self.mixers) for k, v in m.diagnostics().items()}
