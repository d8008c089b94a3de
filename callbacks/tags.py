"""The names the lab's callbacks log under, defined once: the callbacks write them, experiments and tests read them.

Each is a prefix; what follows it says which block, head, part or noise level (e.g. `residual_rms/block_2`).
"""

SAMPLES = "samples"  # text samples (the Text tab) and image grids (the Images tab)
RESIDUAL_RMS = "residual_rms/block_"  # + block index
LOGIT_LENS = "logit_lens/block_"  # + block index
ATTENTION = "attention/layer_"  # + layer index: a figure of each head's attention weights
ATTENTION_ENTROPY = "attention_entropy/layer_"  # + "{layer}/head_{head}"
INDUCTION_SCORE = "induction_score/layer_"  # + "{layer}/head_{head}"
IN_CONTEXT_SCORE = "in_context/score"
IN_CONTEXT_LOSS_BY_POSITION = "in_context/loss_by_position"  # a figure
VAL_LOSS_BY_T = "val_loss_by_t/"  # + "{lo:03d}-{hi:03d}", the timesteps of a bucket
TRAJECTORY = "denoising/trajectory"
UPDATE_RATIO = "update_ratio/"  # + part (see callbacks.grad_norms.part_of)
GRAD_NORM = "grad_norm/"  # + part, or "total"
QUALITY = "quality/"  # + "fid", "confidence", "class_balance" or "accuracy"

OBSERVED = (RESIDUAL_RMS, LOGIT_LENS, ATTENTION, ATTENTION_ENTROPY, INDUCTION_SCORE, IN_CONTEXT_SCORE,
            IN_CONTEXT_LOSS_BY_POSITION, VAL_LOSS_BY_T, TRAJECTORY, UPDATE_RATIO)
