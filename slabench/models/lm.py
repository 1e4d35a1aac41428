"""The language-model backbone every mixer is trained in.

tokens [B, T] -> embedding (+ learned positions, optional) -> n_layers pre-norm blocks of
[mixer, optional MLP] with residuals -> final RMSNorm -> tied output head -> logits [B, T, V].
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from slabench.models.base import Mixer


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
        self.norm1, self.mixer = nn.RMSNorm(d_model), mixer
        self.norm2 = nn.RMSNorm(d_model) if mlp else None
        self.mlp = MLP(d_model) if mlp else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        x = x + self.mixer(self.norm1(x))
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x


class LM(nn.Module):
    """A small causal LM around a mixer.

    make_mixer: called once per layer, returns a fresh `Mixer`.
    max_len: size of the learned position table when `pos_emb == "learned"`.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_layers: int,
        make_mixer: Callable[[], Mixer],
        mlp: bool = True,
        pos_emb: str = "none",
        max_len: int = 0,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model) if pos_emb == "learned" else None
        self.blocks = nn.ModuleList(Block(d_model, make_mixer(), mlp) for _ in range(n_layers))
        self.norm = nn.RMSNorm(d_model)
        # Small embeddings as in GPT-2; mixers and MLPs keep their own initialisation, since
        # several mixers (decay gates, SLA gates) initialise parameters on purpose.
        for emb in (self.embed, self.pos):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, V]
        x = self.embed(tokens)  # [B, T, D]
        if self.pos is not None:
            x = x + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.embed.weight.T  # tied head

    @property
    def mixers(self) -> list[Mixer]:
        return [b.mixer for b in self.blocks]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def state_size(self, seq_len: int) -> int:
        """Inference state per sequence, summed over layers (elements)."""
        return sum(m.state_size(seq_len) for m in self.mixers)

    def diagnostics(self) -> dict[str, float]:
        """Each mixer's diagnostics, keyed `layer<i>/<name>`."""
        return {f"layer{i}/{k}": v for i, m in enumerate(self.mixers) for k, v in m.diagnostics().items()}
