"""fla's gla kernels as candidates of the ops 'gla' and 'simple_gla': each takes the op's own
arguments (q, k, v, g, scale, output_final_state) and returns (o, final state or None)."""

from __future__ import annotations

import torch


def fla_chunk_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.gla import chunk_gla

    return chunk_gla(q, k, v, g, scale=scale, output_final_state=output_final_state)


def fla_fused_recurrent_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.gla import fused_recurrent_gla

    return fused_recurrent_gla(q, k, v, gk=g, scale=scale, output_final_state=output_final_state)


def fla_chunk_simple_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.simple_gla import chunk_simple_gla

    return chunk_simple_gla(q, k, v, g=g, scale=scale, output_final_state=output_final_state)


def fla_chunk_gla_expanded(q, k, v, g, scale, output_final_state):
    # A per-head (or absent) decay is a per-channel decay that repeats over Dk.
    g = q.new_zeros(q.shape, dtype=torch.float32) if g is None else g[..., None].float().expand(q.shape)
    return fla_chunk_gla(q, k, v, g.contiguous(), scale, output_final_state)


def fla_fused_recurrent_simple_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.simple_gla import fused_recurrent_simple_gla

    return fused_recurrent_simple_gla(q, k, v, g=g, scale=scale, output_final_state=output_final_state)
