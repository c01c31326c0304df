"""The two cross-entropies a run can train with, by name (no TensorFlow import here)."""

KERAS3_LOSS = "keras3"
KERAS2_CLIPPED_LOSS = "keras2-clipped"
KERAS2_EPSILON = 1e-7
LOSSES = {
    KERAS3_LOSS: "Keras 3's categorical cross-entropy (computed from the softmax's logits)",
    KERAS2_CLIPPED_LOSS: "Keras 2's categorical cross-entropy: probabilities clipped to "
    "[1e-7, 1 - 1e-7], so a saturated wrong prediction costs -ln 1e-7 = 16.118 and no gradient",
}
