"""The settings of a training run: model, data, method, trainer. Each field's docstring is its
help (`rim config` lists them all); the method section is the chosen method's own settings
(`rim.methods`), told apart by `method.name`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from rim.common.schema import Dtype, Section
from rim.data.answers import Checker
from rim.methods.settings import AnyMethodConfig, RiMConfig


class ModelConfig(Section):
    """The model: a pretrained causal LM (hub name or local dir) or one built from scratch."""

    name_or_path: str | None = None
    """Hub name or local directory of a pretrained model; null builds `scratch`."""
    gguf_file: str | None = None
    """A GGUF file inside `name_or_path` to load from."""
    scratch: dict[str, Any] = Field(
        default_factory=lambda: {"model_type": "gpt2", "n_layer": 4, "n_embd": 256, "n_head": 4}
    )
    """transformers config of a model trained from scratch: `model_type` plus its fields
    (replaced whole by a later file or override, not merged)."""
    vocab_size: int = Field(512, ge=8)
    """Vocabulary size of the tokenizer trained on the data (scratch models only)."""
    max_length: int = Field(512, ge=1)
    """Context length of a scratch model."""
    dtype: Dtype = "float32"
    """Weights dtype: float32 to fine-tune fully (bf16 compute is `trainer.mixed_precision`);
    bfloat16/float16 for the frozen base under `lora` (see `rim.training.precision`)."""
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
    of one existing token whose rows they copy (Coconut: `<<`). Pretrained models and
    `init_from` runs (whose rows of rim's tokens start again from that token)."""

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
    """The validation split, same formats: evaluated during training (`trainer.eval_every`),
    the one `trainer.select: best` selects on, and scored with the final model (`eval.json`'s
    `valid`)."""
    test: str | None = None
    """The test split, same formats: the final (selected) model is scored on it once, at the
    end (`eval.json`'s `test`); nothing during training reads it."""
    eval_size: int | None = Field(None, ge=1)
    """Evaluate on the first N records of `eval` (validation) only; `test` is scored whole."""
    checker: Checker = "exact"
    """How answers are compared (see `rim.data.answers`)."""
    question_field: str = Field("question", min_length=1)
    """The field (column) of JSON, JSONL and dataset rows that holds the question."""
    steps_field: str = Field("steps", min_length=1)
    """The field that holds the reasoning steps (a list of strings)."""
    answer_field: str = Field("answer", min_length=1)
    """The field that holds the answer. With other names than question/steps/answer, rows are
    read as they are (no published layout is guessed)."""

    def fields(self) -> tuple[str, str, str]:
        """The question, steps and answer field names."""
        return self.question_field, self.steps_field, self.answer_field

    @model_validator(mode="before")
    @classmethod
    def _no_valid(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "valid" in raw:
            raise ValueError(
                "has no 'valid' any more: data.eval is the validation split (it "
                "is evaluated during training and selects), data.test the test "
                "split (scored once at the end)"
            )
        return raw


class StageConfig(Section):
    """Length and optimisation of one training stage."""

    epochs: float = Field(1.0, ge=0)
    """Passes over the training data (used when `steps` is null)."""
    steps: int | None = Field(None, ge=0)
    """Optimizer steps; overrides `epochs`."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate (AdamW)."""
    warmup: float = Field(0.04, ge=0, lt=1)
    """Linear warmup as a fraction of the stage, then `schedule`."""
    schedule: Literal["constant", "cosine"] = "constant"
    """After the warmup: `constant` (the paper's) or `cosine`, a half cosine down to 0 at the
    end of the stage (Hugging Face's `cosine`; CODI's recipe)."""
    dropout: float | None = Field(None, ge=0, lt=1)
    """Set every dropout of the model, LoRA's included, to this value for the stage (null =
    keep)."""
    optimizer_reset: Literal["stage", "epoch"] = "stage"
    """A fresh AdamW at the start of the stage, or of every epoch (Coconut's recipe)."""


_Tracker = Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive"]
"""An experiment tracker Accelerate can report to."""


def _default_trackers() -> list[_Tracker]:
    return ["tensorboard"]


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
    """Autocast through Accelerate: no, bf16 or fp16 (the compute dtype; weights and AdamW
    state keep `model.dtype`)."""
    allow_low_precision_weights: bool = False
    """Fully fine-tune weights of `model.dtype` bfloat16/float16, AdamW state included (updates
    below the weights' precision are lost: at lr 1e-4 every norm weight of 1.0 stays put). Off:
    such weights are refused unless `model.lora` freezes them."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads (null = torch's default)."""
    stage1: StageConfig = Field(default_factory=lambda: StageConfig(epochs=6.0))
    """RiM's stage 1 (grounding)."""
    stage2: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2.0, lr=5e-4))
    """RiM's stage 2 (refinement)."""
    baseline: StageConfig = Field(default_factory=lambda: StageConfig(epochs=8.0))
    """The one stage of no-CoT and CoT (by default RiM's 6 + 2 epochs; pause tokens train
    RiM's stage-2 settings for the steps of stage 1 + stage 2)."""
    budget: Literal["stages", "baseline"] = "stages"
    """`stages`: every stage trains its own section's steps; `baseline`: the stages of a
    multi-stage method (RiM, pause, Coconut) together train `trainer.baseline`'s optimizer
    steps, split in proportion to their own (RiM's recipes where the paper gives no budget)."""
    coconut: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2.0))
    """Each curriculum stage of Coconut (by default 4 x 2 epochs with 3 latent stages)."""
    coconut_final: StageConfig = Field(default_factory=lambda: StageConfig(epochs=2.0))
    """Coconut's final all-latent stage (with `method.final_stage`)."""
    log_every: int = Field(20, ge=1)
    """Log loss and throughput every N optimizer steps."""
    report_to: list[_Tracker] = Field(default_factory=_default_trackers)
    """Experiment trackers, through Accelerate (each must be installed; [] for none)."""
    eval_batch_size: int = Field(64, ge=1)
    """Questions per batch at evaluation."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Longest generation at evaluation and inference; null: the method's need on the training
    data (the longest answer, or the longest chain for methods that write one) plus 4."""
    eval_every: Annotated[int, Field(ge=1)] | Literal["epoch"] | None = None
    """Evaluate on `data.eval` (the validation split, never `data.test`) every N optimizer
    steps (or every epoch) and at the end of every stage; accuracy goes to metrics.jsonl and
    TensorBoard."""
    select: Literal["last", "best"] = "last"
    """The final model: the `last` one trained, or the `best` on validation (`data.eval`, at
    the evaluations of `eval_every`, which it needs). `data.test` never selects."""
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

    @model_validator(mode="before")
    @classmethod
    def _no_keep_best(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "keep_best" in raw:
            raise ValueError(
                "has no 'keep_best' any more: set trainer.select to best (on validation) or last"
            )
        return raw

    @model_validator(mode="after")
    def _best_needs_evaluation(self) -> TrainerConfig:
        if self.select == "best" and self.eval_every is None:
            raise ValueError("trainer.select: best needs trainer.eval_every")
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

    @model_validator(mode="after")
    def _full_fine_tuning_keeps_fp32(self) -> Config:
        if (
            self.model.dtype != "float32"
            and self.model.lora is None
            and not self.trainer.allow_low_precision_weights
        ):
            raise ValueError(
                f"field 'model.dtype' is {self.model.dtype} under full fine-tuning, where AdamW's "
                "small updates round away: keep float32 weights with trainer.mixed_precision: "
                "bf16, freeze them with model.lora, or set "
                "trainer.allow_low_precision_weights: true"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what a run's `config.yaml` holds)."""
        return self.model_dump(mode="json")
