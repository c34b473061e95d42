"""The settings of a training run: model, data, method, trainer. Each field's docstring is its
help (`rim config` lists them all); the method section is the chosen method's own settings
(`rim.methods`), told apart by `method.name`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rim.data.answers import Checker
from rim.methods import AnyMethodConfig
from rim.methods.rim import RiMConfig
from rim.schema import Dtype, Section


class ModelConfig(Section):
    """The model: a pretrained causal LM (hub name or local dir) or one built from scratch."""

    name_or_path: str | None = None
    """Hub name or local directory of a pretrained model; null builds `scratch`."""
    gguf_file: str | None = None
    """A GGUF file inside `name_or_path` to load from."""
    scratch: dict[str, Any] = Field(
        default_factory=lambda: {"model_type": "gpt2", "n_layer": 4, "n_embd": 256, "n_head": 4})
    """transformers config of a model trained from scratch: `model_type` plus its fields
    (replaced whole by a later file or override, not merged)."""
    vocab_size: int = Field(512, ge=8)
    """Vocabulary size of the tokenizer trained on the data (scratch models only)."""
    max_length: int = Field(512, ge=1)
    """Context length of a scratch model."""
    dtype: Dtype = "float32"
    """Weights dtype."""
    lora: dict[str, Any] | None = None
    """LoRA settings (`r`, `alpha`, `dropout`, `target_modules`); null = full fine-tuning."""
    attn_implementation: Literal["sdpa", "eager", "flex_attention"] | None = None
    """Attention kernel; null: the model's default (SDPA). `flex_attention` trains the
    block-causal rule as a block-sparse FlexAttention mask (GPU; architectures whose attention
    takes a BlockMask, e.g. Llama and Qwen, not GPT-2)."""
    init_from: str | None = None
    """A run (or model) directory written by `rim train` whose weights and tokenizer start this
    run, e.g. a CoT run for Coconut (its recipe); replaces `name_or_path` and `scratch`."""
    new_token_init: str = "mean"
    """How the embedding rows of added tokens start: `mean` of the existing rows, or the text
    of one existing token whose rows they copy (Coconut: `<<`). Pretrained models only."""

    @model_validator(mode="after")
    def _buildable(self) -> ModelConfig:
        if self.name_or_path is None and "model_type" not in self.scratch:
            raise ValueError("model.scratch needs a model_type when model.name_or_path is null")
        if self.init_from is not None and self.name_or_path is not None:
            raise ValueError("model.init_from and model.name_or_path exclude each other")
        return self


class DataConfig(Section):
    """Training and evaluation data."""

    train: str = ""
    """Training records (JSONL, JSON list, iCoT text, or `hf:` dataset)."""
    eval: str | None = None
    """Evaluation records, same formats; evaluated at the end of training."""
    valid: str | None = None
    """Validation records for evaluation during training (`trainer.eval_every`); null: `eval`."""
    eval_size: int | None = Field(None, ge=1)
    """Evaluate on the first N evaluation records only."""
    checker: Checker = "exact"
    """How answers are compared (see `rim.data.answers`)."""


class StageConfig(Section):
    """Length and optimisation of one training stage."""

    epochs: float = Field(1.0, ge=0)
    """Passes over the training data (used when `steps` is null)."""
    steps: int | None = Field(None, ge=0)
    """Optimizer steps; overrides `epochs`."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate (AdamW)."""
    warmup: float = Field(0.04, ge=0, lt=1)
    """Linear warmup as a fraction of the stage, then constant."""
    dropout: float | None = Field(None, ge=0, lt=1)
    """Set every dropout of the model, LoRA's included, to this value for the stage (null =
    keep)."""
    optimizer_reset: Literal["stage", "epoch"] = "stage"
    """A fresh AdamW at the start of the stage, or of every epoch (Coconut's recipe)."""


class TrainerConfig(Section):
    """Batching, precision, logging and checkpointing."""

    seed: int = 0
    """Seed of weights, data order and dropout."""
    batch_size: int = Field(32, ge=1)
    """Examples per device and step."""
    grad_accum: int = Field(1, ge=1)
    """Gradient accumulation steps per optimizer step."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    grad_clip: float = Field(1.0, ge=0)
    """Clip the gradient norm to this value (0 = no clipping)."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """Autocast through Accelerate: no, bf16 or fp16."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads (null = torch's default)."""
    stage1: StageConfig = Field(default_factory=lambda: StageConfig(epochs=6.0))
    """RiM's stage 1 (grounding)."""
    stage2: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2.0, lr=5e-4))
    """RiM's stage 2 (refinement)."""
    baseline: StageConfig = Field(default_factory=lambda: StageConfig(epochs=8.0))
    """The one stage of no-CoT, CoT and pause (by default RiM's 6 + 2 epochs)."""
    coconut: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2.0))
    """Each curriculum stage of Coconut (by default 4 x 2 epochs with 3 latent stages)."""
    coconut_final: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2.0))
    """Coconut's final all-latent stage (with `method.final_stage`)."""
    log_every: int = Field(20, ge=1)
    """Log loss and throughput every N optimizer steps."""
    report_to: list[Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml",
                            "dvclive"]] = Field(default_factory=lambda: ["tensorboard"])
    """Experiment trackers, through Accelerate (each must be installed; [] for none)."""
    eval_batch_size: int = Field(64, ge=1)
    """Questions per batch at evaluation."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Longest generation at evaluation and inference; null: the method's need on the training
    data (the longest answer, or the longest chain for methods that write one) plus 4."""
    eval_every: Annotated[int, Field(ge=1)] | Literal["epoch"] | None = None
    """Evaluate on `data.valid` (else `data.eval`) every N optimizer steps (or every epoch) and
    at the end of every stage; accuracy goes to metrics.jsonl and TensorBoard."""
    keep_best: bool = False
    """The final model is the one with the best validation accuracy (needs `eval_every`)."""
    packing: bool = False
    """Pack several examples into each row of `pack_length` tokens (RiM and the one-pass
    baselines): less padding, the same loss per example."""
    pack_length: int | None = Field(None, ge=1)
    """Tokens per packed row; null: the model's context."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them: less memory for
    long sequences, about a third more compute, the same gradients."""
    save_every: int | None = Field(None, ge=1)
    """Write a checkpoint every N optimizer steps (`rim train ... --resume` continues the
    newest); SIGINT and SIGTERM always write one before stopping."""
    keep_last: int = Field(2, ge=1)
    """Checkpoints kept (the newest)."""

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML 1.1 reads a bare `no` as false

    @model_validator(mode="after")
    def _best_needs_evaluation(self) -> TrainerConfig:
        if self.keep_best and self.eval_every is None:
            raise ValueError("trainer.keep_best needs trainer.eval_every")
        return self


class Config(Section):
    """A whole run."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    """The model to train."""
    data: DataConfig = Field(default_factory=DataConfig)
    """Training and evaluation data."""
    method: AnyMethodConfig = Field(default_factory=RiMConfig)
    """The method (`name`) and its own settings."""
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    """Optimisation, batching, logging."""

    @model_validator(mode="before")
    @classmethod
    def _default_method(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("method"), dict):
            raw = {**raw, "method": {"name": "rim", **raw["method"]}}
        return raw

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what a run's `config.yaml` holds)."""
        return self.model_dump(mode="json")
