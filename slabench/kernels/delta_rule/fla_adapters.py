"""fla's gated delta rule kernels as candidates of the op 'delta_rule': each takes the op's own
arguments (q, k, v, g, beta, scale, output_final_state), q and k already L2-normalised."""

from __future__ import annotations


def fla_chunk_gated_delta_rule(q, k, v, g, beta, scale, output_final_state):
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

    return chunk_gated_delta_rule(
        q, k, v, g, beta, scale=scale, output_final_state=output_final_state, use_qk_l2norm_in_kernel=False
    )


def fla_fused_recurrent_gated_delta_rule(q, k, v, g, beta, scale, output_final_state):
    from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule

    return fused_recurrent_gated_delta_rule(
        q, k, v, g=g, beta=beta, scale=scale, output_final_state=output_final_state, use_qk_l2norm_in_kernel=False
    )
