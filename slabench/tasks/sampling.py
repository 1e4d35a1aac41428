"""Vectorised random draws shared by the task generators.

Each function draws a whole batch at once on the generator's device; the Python loops run over
the (small) number of items drawn per row, never over the batch.
"""

from __future__ import annotations

import functools

import torch


def shuffle_rows(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each row of x [B, K] independently and uniformly permuted (vectorised Fisher-Yates)."""
    x = x.clone()
    B, K = x.shape
    for i in range(K - 1, 0, -1):
        j = torch.randint(i + 1, (B, 1), generator=generator, device=x.device)  # [B, 1]
        xi = x[:, i : i + 1].clone()  # [B, 1]
        x[:, i : i + 1] = x.gather(1, j)
        x.scatter_(1, j, xi)
    return x


# On a GPU, the rejection loops below cost a host sync per round (measured on an H100: an MQAR
# batch of 256 x 256 took 1.46 ms, 8% of a training step). Top-k over B x N random keys does
# O(B * N) work but no sync, which a GPU finishes in microseconds for N up to this size.
GPU_TOPK_MAX_N = 1 << 16


def gumbel_topk(logits: torch.Tensor, batch: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """[B, k] long: k distinct indices per row drawn successively without replacement with
    probabilities softmax(logits [N]) (Gumbel top-k: the same distribution, order included)."""
    u = torch.rand(batch, logits.numel(), generator=generator, device=logits.device)  # [B, N]
    gumbel = -torch.log(-torch.log(u.clamp_(min=1e-12, max=1 - 1e-7)))
    return (logits + gumbel).topk(k, dim=1).indices  # [B, k]


def distinct_ints(batch: int, n: int, k: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """[B, k] long: per row, k distinct integers from range(n), uniform over ordered k-subsets.

    When duplicates are rare (k(k-1)/2n <= 1/2, so at least half the rows are accepted), rows are
    drawn i.i.d. and the rows with a duplicate are redrawn: i.i.d. draws conditioned on being
    distinct are uniform over ordered k-subsets. Otherwise Floyd's algorithm picks a uniform
    k-subset in k steps (O(B * k^2) compares) and each row is then shuffled, since Floyd's
    output order is not uniform. `n` may be up to 2**62 (multi-token keys as integer codes).
    """
    if k == 0:
        return torch.empty(batch, 0, dtype=torch.long, device=device)
    if torch.device(device).type == "cuda" and n <= GPU_TOPK_MAX_N:
        return gumbel_topk(torch.zeros(n, device=device), batch, k, generator)
    if k * (k - 1) <= n:
        out = torch.randint(n, (batch, k), generator=generator, device=device)  # [B, k]
        redo, rows = None, out
        while True:
            s = rows.sort(dim=1).values  # [R, k]
            dup = (s[:, 1:] == s[:, :-1]).any(dim=1).nonzero().squeeze(1)  # [R'] rows to redraw
            redo = dup if redo is None else redo[dup]
            if redo.numel() == 0:
                return out
            rows = torch.randint(n, (redo.numel(), k), generator=generator, device=device)
            out[redo] = rows
    out = torch.empty(batch, k, dtype=torch.long, device=device)
    for i, j in enumerate(range(n - k, n)):
        t = torch.randint(j + 1, (batch,), generator=generator, device=device)  # [B] in [0, j]
        taken = (out[:, :i] == t[:, None]).any(dim=1)  # [B]
        out[:, i] = torch.where(taken, torch.full_like(t, j), t)
    return shuffle_rows(out, generator)


def alias_table(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker's alias table of probs [N] (Vose's construction): accept [N] float64, alias [N] long.

    Index i drawn uniformly, kept with probability accept[i], else replaced by alias[i], is a
    draw from probs in O(1), where inverse-CDF search costs O(log N).
    """
    n = probs.numel()
    p = probs.double().cpu()  # the construction is sequential: build it on the host
    scaled = (p * n / p.sum()).tolist()
    accept, alias = [1.0] * n, list(range(n))
    small = [i for i, x in enumerate(scaled) if x < 1]
    large = [i for i, x in enumerate(scaled) if x >= 1]
    while small and large:
        s, big = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], big
        scaled[big] -= 1 - scaled[s]
        (small if scaled[big] < 1 else large).append(big)
    device = probs.device
    return torch.tensor(accept, dtype=torch.float64, device=device), torch.tensor(alias, device=device)


TABLE_PER_DRAW = 8  # first_appearance uses a [B, N] table while N <= this many times the stream length


def first_appearance(stream: torch.Tensor, n: int) -> torch.Tensor:
    """stream [B, M] of values in range(n) -> [B, M] bool: the value's first appearance in its row.

    A [B, n] table of first positions when n is small against M, else a stable sort of each row.
    """
    B, M = stream.shape
    pos = torch.arange(M, device=stream.device).expand(B, M)
    if n <= TABLE_PER_DRAW * M:
        first = torch.full((B, n), M, dtype=torch.long, device=stream.device).scatter_reduce_(1, stream, pos, "amin")
        return first.gather(1, stream) == pos
    values, order = stream.sort(dim=1, stable=True)
    new = torch.ones_like(values, dtype=torch.bool)
    new[:, 1:] = values[:, 1:] != values[:, :-1]  # first of a run of equal values = earliest position
    return torch.empty_like(new).scatter_(1, order, new)


def weighted_distinct(
    probs: torch.Tensor,
    batch: int,
    k: int,
    generator: torch.Generator,
    table: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """[B, k] long: k distinct indices per row drawn successively without replacement from probs [N].

    Same distribution (order included) as numpy's `choice(N, k, replace=False, p=probs)`. The
    first k distinct values of an i.i.d. stream from probs, in order of first appearance, are
    exactly such a draw: each new value is a draw from probs renormalised over unseen values.
    A stream of 2k + 8 draws per row usually holds k distinct values; rows that fall short keep
    their prefix and continue step by step (draw from probs, redraw on a collision; after a
    few rounds the last colliding rows draw from the renormalised distribution directly).
    table: `alias_table(probs)` when the caller keeps one (its construction is a host loop).
    """
    device, N = probs.device, probs.numel()
    if device.type == "cuda" and N <= GPU_TOPK_MAX_N:
        return gumbel_topk(probs.float().log(), batch, k, generator)
    probs = probs.to(torch.float64)
    accept, alias = table if table is not None else alias_table(probs)

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        # One float64 uniform gives both the slot (integer part) and the accept test (fraction).
        x = torch.rand(shape, dtype=torch.float64, generator=generator, device=device) * N
        i = x.long().clamp_(max=N - 1)
        return torch.where(x - i < accept.take(i), i, alias.take(i))

    M = 2 * k + 8
    stream = draw((batch, M))  # [B, M]
    is_first = first_appearance(stream, N)  # [B, M]
    rank = is_first.cumsum(dim=1)  # [B, M] distinct values seen so far
    column = torch.where(is_first & (rank <= k), rank - 1, k)  # column k collects the rest
    out = torch.zeros(batch, k + 1, dtype=torch.long, device=device).scatter_(1, column, stream)[:, :k]
    found = rank[:, -1]  # [B]

    for i in range(int(found.min().clamp(max=k)), k):
        todo = (found <= i).nonzero().squeeze(1)  # rows whose column i is still empty
        for _ in range(4):
            g = draw((todo.numel(),))  # [R]
            hit = (out[todo, :i] == g[:, None]).any(dim=1)  # [R]
            out[todo[~hit], i] = g[~hit]
            todo = todo[hit]
            if todo.numel() == 0:
                break
        if todo.numel():
            w = probs.expand(todo.numel(), N).scatter(1, out[todo, :i], 0.0)  # [R, N] taken ones zeroed
            out[todo, i] = torch.multinomial(w, 1, generator=generator).squeeze(1)
    return out


def subset_mask(batch: int, n: int, k: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """[B, n] bool with exactly k True per row, uniform over k-subsets (Knuth's selection sampling).

    Position t is picked with probability (still needed) / (positions left): one pass over n.
    """
    u = torch.rand(batch, n, dtype=torch.float64, generator=generator, device=device)  # [B, n]
    need = torch.full((batch,), k, dtype=torch.float64, device=device)
    mask = torch.empty(batch, n, dtype=torch.bool, device=device)
    for t in range(n):
        pick = u[:, t] * (n - t) < need  # [B]
        mask[:, t] = pick
        need -= pick.double()
    return mask


def depth_bucket(pos: torch.Tensor, span: int) -> torch.Tensor:
    """Decile 0..9 of positions pos [B] in range(span + 1) (0 = start, 9 = end)."""
    return (pos * 10 // max(span, 1)).clamp(max=9)


def power_law_probs(space: int, power_a: float) -> torch.Tensor:
    """[S] float64 probability of each query gap 0..S-1, proportional to a * (gap + 1) ** (a - 1)
    (Zoology's MQAR query placement; a = 1 is uniform)."""
    gaps = torch.arange(1, space + 1, dtype=torch.float64)
    p = power_a * gaps ** (power_a - 1)
    return p / p.sum()


@functools.lru_cache(maxsize=32)
def power_law_sampler(
    space: int, power_a: float, device: torch.device
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """`power_law_probs` on `device` and their alias table (for `weighted_distinct`), built once
    per shape and device: samplers run every training step, and the table's construction is a
    host loop."""
    probs = power_law_probs(space, power_a).to(device)
    return probs, alias_table(probs)
