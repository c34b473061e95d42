"""The settings of `rim bench latency`, `memory` and `step` (the keys of configs/bench/*.yaml
files, and the flags of their commands), apart from the benchmarks: the CLI's parser reads them
without importing torch. Each `*_PATHS` names the settings that are paths, resolved against the
settings file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rim.common.schema import Device, Dtype, Section
from rim.methods.settings import METHOD_CONFIGS


class LatencySettings(Section):
    """Settings of `rim bench latency` (also the keys of a configs/bench/latency-*.yaml file)."""

    model: str | None = None
    """Model preset (a config file with a `model:` section, e.g. configs/model/tiny.yaml);
    null: the default 4-layer d-256 GPT-2. Ignored with `run`."""
    run: str | None = None
    """A trained run directory: its weights, tokenizer, K and M instead of a random model."""
    data: str | None = None
    """Records whose questions are asked (needs a tokenizer: `run` or a pretrained model);
    null: random questions of `question_tokens` tokens."""
    methods: list[str] | None = None
    """Methods to time; null: every registered method."""
    batches: list[int] = Field(default_factory=lambda: [1, 64], min_length=1)
    """Batch sizes."""
    device: Device = "cpu"
    """cpu, cuda or cuda:N."""
    dtype: Dtype = "float32"
    """Weights dtype (bfloat16 on a GPU)."""
    question_tokens: int = Field(48, ge=1)
    """Q: tokens of a random question (GSM8k questions are about 40-60 GPT-2 tokens)."""
    answer_tokens: int = Field(4, ge=1)
    """A: answer tokens every method generates."""
    chain_tokens: int = Field(25, ge=0)
    """C: chain tokens before the answer, for methods that write a chain (CoT)."""
    blocks: int | None = Field(None, ge=1)
    """K memory blocks (pause, RiM); null: the run's, else 8."""
    block_size: int | None = Field(None, ge=1)
    """M memory tokens per block; null: the run's, else 2."""
    thoughts_per_step: int = Field(1, ge=1)
    """Coconut: c continuous thoughts per latent stage."""
    latent_stages: int | None = Field(None, ge=0)
    """Coconut: latent stages L (c x L thoughts); null: K."""
    thoughts: int = Field(6, ge=1)
    """CODI: the student's continuous thoughts (its recipes' 6)."""
    warmup: int = Field(2, ge=0)
    """Untimed rounds first."""
    repeats: int = Field(10, ge=1)
    """Timed rounds; the median is reported."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads (null: torch's default)."""
    seed: int = 0
    """Seed of the random model and questions."""

    @field_validator("methods")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [m for m in value if m not in METHOD_CONFIGS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r} (known: {', '.join(METHOD_CONFIGS)})")
        return value

    @field_validator("batches")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError("must all be at least 1")
        return value


LATENCY_PATHS = ("model", "run", "data")


class MemorySettings(Section):
    """Settings of `rim bench memory` (also the keys of a configs/bench/memory-*.yaml file)."""

    model: str | None = None
    """Model preset (configs/model/*.yaml, built from scratch); null: the default 4-layer
    d-256 GPT-2."""
    steps: int = Field(3, ge=1)
    """Optimizer steps per stage."""
    batch_size: int = Field(8, ge=1)
    """Examples per step (digit chains)."""
    blocks: int = Field(4, ge=1)
    """K: memory blocks."""
    precision: Literal["bf16", "no"] = "no"
    """Mixed precision of the run (trainer.mixed_precision)."""
    device: Device = "cpu"
    """cpu or cuda (the trainer takes the GPU when there is one)."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads (null: torch's default)."""
    seed: int = 0
    """Seed of the model and the chains."""


MEMORY_PATHS = ("model",)


class StepSettings(Section):
    """Settings of `rim bench step` (also the keys of a configs/bench/step-*.yaml file)."""

    model: str | None = None
    """Model preset (configs/model/*.yaml); null: the default 4-layer d-256 GPT-2."""
    batch_size: int = Field(64, ge=1)
    """Examples per step."""
    ops: int = Field(4, ge=1)
    """Moves per digit chain: steps per example, so stage-1 blocks."""
    blocks: int = Field(4, ge=1)
    """K: stage-2 memory blocks."""
    block_size: int = Field(2, ge=1)
    """M: memory tokens per block."""
    precision: Literal["bf16", "no"] = "bf16"
    """Autocast: bf16 (as the trainer's mixed_precision: bf16) or no."""
    device: Device = "cpu"
    """cpu, cuda or cuda:N."""
    warmup: int = Field(3, ge=0)
    """Untimed steps first."""
    repeats: int = Field(10, ge=1)
    """Timed steps per layout; the median is reported."""
    threads: int | None = Field(None, ge=1)
    """torch CPU threads (null: torch's default)."""
    data: str | None = None
    """Records whose lengths shape the batch (e.g. the GSM8k-Aug validation file), drawn with
    `seed`; null: digit chains of `ops` moves."""
    pack_length: int | None = Field(None, ge=1)
    """Also time RiM's layout packed into rows of this many tokens (`trainer.packing`)."""
    lr: float = Field(1e-3, gt=0)
    """AdamW learning rate of the timed steps."""
    seed: int = 0
    """Seed of the model and the chains."""
    vocab_size: int | None = Field(None, ge=1)
    """Rows of the model's embedding and LM head (null: the tokenizer's): a real tokenizer's
    size (SmolLM2: 49152) gives the head its real share of the step."""
    nocot: bool = False
    """Also time a no-CoT step (question -> answer) against the SFT step of its shape."""
    full_logits: bool = False
    """Time the methods' losses with the logits of every position, as before the LM head ran
    only at labelled positions (`rim.core.losses.full_logits`): the "before" of a comparison."""


STEP_PATHS = ("model", "data")


PeerCheck = Literal["equality", "generation", "speed", "loaders"]
PEER_CHECKS: tuple[PeerCheck, ...] = ("equality", "generation", "speed", "loaders")


class PeersSettings(Section):
    """Settings of `rim bench peers` (also the keys of a configs/bench/peers-*.yaml file): rim
    beside a peer's official code on the same weights, batches and machine."""

    peer: Literal["coconut", "icot", "codi"] = "coconut"
    """The peer method whose official code runs beside rim's: Coconut
    (facebookresearch/coconut), iCoT-SI (da03/Internalize_CoT_Step_by_Step; `equality`: the
    removal schedule, resets and loss of a recorded official run) or CODI (zhenyi4/codi;
    `equality`: each loss term and the gradients on the official batches); `speed` for both:
    the official training loop's steps against rim's."""
    checkout: str | None = None
    """The folder of a `git clone` of the peer's official repository; null: the environment
    variable RIM_PEER_CHECKOUT."""
    python: str | None = None
    """The Python of the peer's own environment (its pinned versions); null: this one."""
    model: str | None = None
    """Model preset (configs/model/*.yaml, a GPT-2 built from scratch); null: the default 4-layer
    d-256 GPT-2."""
    init_std: float | None = Field(0.05, gt=0)
    """Std of the random weight matrices (biases and norms as built; null: all as built). GPT-2's
    own init can give nearly the same greedy answer to every question, which would leave the
    generation check little to compare; much wider (0.2) makes the thought chain chaotic, its
    gradients reach 1e3 and float rounding alone moves them by 1e-5 relative."""
    checks: list[PeerCheck] = Field(default_factory=lambda: list(PEER_CHECKS[:3]), min_length=1)
    """What to run: loss, logits and gradients at every stage; greedy answers; training and
    inference speed; and, given `data` and `tokenizer`, the peer's data loaders against rim's
    readers."""
    latent_stages: int = Field(3, ge=1)
    """Coconut's max_latent_stage (its GSM8k recipe's 3)."""
    thoughts_per_step: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    """c values the equality runs at (every stage, and the final all-latent one, for each)."""
    examples: int = Field(8, ge=1)
    """Rows of the equality batch (random questions and chains, some shorter than the stage)."""
    question_tokens: int = Field(48, ge=2)
    """Tokens of the longest random question (GSM8k questions are ~40-60 GPT-2 tokens)."""
    step_tokens: int = Field(8, ge=1)
    """Tokens per reasoning step (GSM8k-Aug's calculator steps are ~8 GPT-2 tokens)."""
    questions: int = Field(50, ge=1)
    """Questions answered greedily by both for the generation check."""
    max_new_tokens: int = Field(16, ge=1)
    """Tokens generated per answer."""
    batch_size: int = Field(32, ge=1)
    """Examples per timed training step (Coconut, CODI; iCoT-SI's is `official_args.batch_size`)."""
    speed_stage: int = Field(2, ge=0)
    """Curriculum stage of the timed training steps (stage x c thoughts)."""
    speed_c: int = Field(2, ge=1)
    """c of the timed training steps, and of the generation check and the inference timing
    (c x latent_stages thoughts)."""
    steps_per_round: int = Field(3, ge=1)
    """Training steps per side per round; rounds alternate peer and rim."""
    warmup: int = Field(1, ge=0)
    """Untimed rounds first."""
    repeats: int = Field(4, ge=1)
    """Timed rounds; medians are reported."""
    batches: list[int] = Field(default_factory=lambda: [1, 64], min_length=1)
    """Inference batch sizes for rim (the official Coconut generates at batch 1 only)."""
    lr: float = Field(1e-4, gt=0)
    """AdamW learning rate (Coconut's GSM8k recipe)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay (Coconut's GSM8k recipe)."""
    data: list[str] = Field(default_factory=list)
    """Coconut JSON files (or iCoT text files, converted by the checkout's
    preprocessing/gsm_icot.py) read by both loaders."""
    tokenizer: str | None = None
    """A GPT-2 tokenizer folder (vocab.json, merges.txt) for the loaders; null: skip them."""
    train_file: str | None = None
    """iCoT-SI and CODI: the iCoT text file the official training reads (rim's reader too)."""
    official_args: dict[str, float | int | bool | str] = Field(default_factory=dict)
    """iCoT-SI and CODI: options of the official run, by its train.py's command-line names; rim's
    method gets the same. iCoT-SI: batch_size, epochs, max_size, remove_per_epoch,
    remove_start_from, remove_all_when_remove_beyond, removal_smoothing_lambda,
    reset_optimizer, lr (0 keeps the weights, so every step's loss is compared on the same
    model), seed. CODI: num_latent, use_prj, prj_dim, prj_dropout, prj_no_ln, distill_loss_type,
    distill_loss_factor, distill_loss_div_std, ref_loss_factor, remove_eos, ..."""
    codi_examples: int = Field(8, ge=1)
    """CODI: the first lines of `train_file` compared, each alone, then those whose questions
    have the most common length in one batch (the official code ignores padding in its thought
    passes, so a padded batch is not compared)."""
    icot_grad_steps: list[int] = Field(default_factory=lambda: [0])
    """iCoT-SI: steps whose gradients are compared too."""
    threads: int | None = Field(2, ge=1)
    """torch CPU threads on both sides."""
    seed: int = 0
    """Seed of the model, the examples and the questions."""

    @model_validator(mode="after")
    def _checks_have_inputs(self) -> PeersSettings:
        if self.peer != "coconut" and (self.train_file is None or self.tokenizer is None):
            raise ValueError(
                f"the {self.peer} checks read `train_file` with `tokenizer` (a GPT-2 tokenizer folder)"
            )
        if self.peer != "coconut" and not set(self.checks) <= {"equality", "speed"}:
            raise ValueError(f"the {self.peer} peer has two checks: equality and speed")
        if "loaders" in self.checks and (not self.data or self.tokenizer is None):
            raise ValueError(
                "the loaders check reads `data` with `tokenizer` (a GPT-2 tokenizer folder): set both"
            )
        if self.peer == "coconut" and "speed" in self.checks and self.questions < self.warmup + self.repeats:
            raise ValueError("the inference timing splits `questions` over warmup + repeats rounds: ask more")
        unmodelled = sorted(set(self.official_args) - ICOT_SPEED_ARGS)
        if self.peer == "icot" and "speed" in self.checks and unmodelled:
            raise ValueError(
                f"official_args {unmodelled} change the official loop in ways rim's timed loop does not "
                f"follow: the speed check takes {sorted(ICOT_SPEED_ARGS)}"
            )
        return self


ICOT_SPEED_ARGS = {
    "max_size",
    "batch_size",
    "epochs",
    "lr",
    "seed",
    "max_grad_norm",
    "remove_per_epoch",
    "remove_start_from",
    "remove_all_when_remove_beyond",
    "removal_smoothing_lambda",
    "reset_optimizer",
}
"""The official iCoT-SI options the speed check's rim loop follows (others, e.g. `accumulate`,
`max_len_train` or `pretrain_epochs`, change what an official step is)."""


PEERS_PATHS = ("checkout", "model", "data", "tokenizer", "train_file")
