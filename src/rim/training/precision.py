"""The dtypes of training, as a config sets them.

Full fine-tuning keeps float32 weights and AdamW state (an update of lr 1e-4 to a bf16 weight of
1.0 rounds away) and computes in bf16 under autocast (`trainer.mixed_precision: bf16`, through
Accelerate). Low-precision weights (`model.dtype` bfloat16 or float16) are for the frozen base
under LoRA, whose adapters and new embedding rows train in float32 (PEFT keeps them so, and
`rim.models.modeling.add_lora` makes sure). `rim.config.Config` refuses low-precision weights under full
fine-tuning unless `trainer.allow_low_precision_weights` says so.
"""

from __future__ import annotations

from rim.config import Config

AUTOCAST = {"no": None, "bf16": "bfloat16", "fp16": "float16"}
"""The compute dtype of each `trainer.mixed_precision` (None: the weights' own)."""


def precision_plan(cfg: Config) -> dict[str, str | None]:
    """What trains in which dtype: `weights_dtype` (the trained weights), `frozen_dtype` (the
    frozen base under LoRA; None under full fine-tuning), `compute_dtype` (the forward and
    backward matmuls), `optimizer_state_dtype` (AdamW's moments: those of the trained weights)."""
    lora = cfg.model.lora is not None
    trained = "float32" if lora else cfg.model.dtype
    return {
        "weights_dtype": trained,
        "frozen_dtype": cfg.model.dtype if lora else None,
        "compute_dtype": AUTOCAST[cfg.trainer.mixed_precision] or cfg.model.dtype,
        "optimizer_state_dtype": trained,
    }
