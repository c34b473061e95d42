"""The settings of every method, apart from the methods themselves: what a config, `rim config`
and the CLI's parser need, without importing torch or transformers (seconds at start-up).

Each method's class names its settings class as `Config`; `METHOD_CONFIGS` lists them by name in
the order of `rim.methods.METHODS` (a test keeps the two registries in step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field, model_validator

from rim.common.schema import Section


class MethodConfig(Section):
    """Settings every method has: its name (the key of `rim.methods.METHODS`)."""

    name: str


class BlockConfig(MethodConfig):
    """Settings of the methods that append memory blocks `<b> <m>.. </b>` to the question."""

    blocks: int = Field(8, ge=1)
    """K: memory blocks at inference (and in RiM's stage 2)."""
    block_size: int = Field(2, ge=1)
    """M: `<m>` tokens per block."""


class NoCoTConfig(MethodConfig):
    """no-CoT has no settings of its own."""

    name: Literal["nocot"] = "nocot"


class CoTConfig(MethodConfig):
    """CoT has no settings of its own."""

    name: Literal["cot"] = "cot"


class PauseConfig(BlockConfig):
    """Pause tokens' settings: K blocks of M memory tokens, and where the answer is read out."""

    name: Literal["pause"] = "pause"
    readout: Literal["every_block", "last"] = "every_block"
    """`every_block`: the answer after every block with RiM's stage-2 weights (RiM's stage 2
    without stage 1, the method notes' baseline); `last`: the answer once, after block K."""


class RiMConfig(BlockConfig):
    """RiM's settings: K blocks of M memory tokens, and when stage 1's step readouts fade."""

    name: Literal["rim"] = "rim"
    fade_start: float = Field(0.0, ge=0, le=1)
    """Stage-1 fading starts at this fraction of stage 1."""
    fade_end: float = Field(1.0, ge=0, le=1)
    """... and ends here (all step readouts at weight 0)."""

    @model_validator(mode="after")
    def _fading_window(self) -> RiMConfig:
        if self.fade_start > self.fade_end:
            raise ValueError("fade_start must not be after fade_end")
        return self


class CoconutConfig(MethodConfig):
    """Coconut's curriculum: c thoughts per step, the latent stages, an optional final stage."""

    name: Literal["coconut"] = "coconut"
    thoughts_per_step: int = Field(1, ge=1)
    """c: the continuous thoughts that replace one reasoning step."""
    latent_stages: int = Field(3, ge=0)
    """Curriculum stages after stage 0; stage k replaces the first k steps."""
    final_stage: bool = False
    """One more stage after the last, with c*latent_stages thoughts and no step left as text
    (Coconut's GSM8k schedule)."""
    first_stage: int = Field(0, ge=0)
    """Start the curriculum at this stage (1 after a CoT run in `model.init_from`, Coconut's
    GSM8k recipe, whose CoT training is stage 0)."""

    @model_validator(mode="after")
    def _first_stage_exists(self) -> CoconutConfig:
        if self.first_stage > self.latent_stages:
            raise ValueError("method.first_stage must be at most method.latent_stages")
        return self


class ICoTConfig(MethodConfig):
    """Stepwise internalization (iCoT-SI): CoT tokens removed from the left as training goes."""

    name: Literal["icot"] = "icot"
    remove_per_epoch: float = Field(8.0, gt=0)
    """CoT tokens removed per epoch, one every round(steps per epoch / this) optimizer steps."""
    remove_start_from: int = Field(0, ge=0)
    """CoT tokens removed from the first step on."""
    remove_all_when_remove_beyond: int | None = Field(None, ge=1)
    """Remove the whole chain once this many tokens are scheduled; null: never (inf)."""
    removal_smoothing_lambda: float = Field(4.0, gt=0)
    """lambda of the random extra offset o, P(o) ~ exp(-lambda o); .inf: no offset."""
    max_offset: int = Field(99, ge=0)
    """The largest offset o (the official distribution's 100 values, 0..99)."""
    reset_optimizer: bool = True
    """A fresh AdamW whenever the number of removed tokens grows."""


class CODIConfig(MethodConfig):
    """CODI's settings (the official code's, as its GPT-2 GSM8k-Aug script sets them)."""

    name: Literal["codi"] = "codi"
    thoughts: int = Field(6, ge=1)
    """Continuous thoughts of the student (`num_latent`)."""
    projection: bool = True
    """Feed each thought back through the projection (`use_prj`)."""
    projection_dim: int | None = Field(None, ge=1)
    """Inner width of the projection (`prj_dim`); null: the model's hidden size (768 for GPT-2,
    2048 for Llama-3.2-1B, the scripts' values)."""
    projection_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout at the projection's input (`prj_dropout`)."""
    projection_norm: bool = True
    """A LayerNorm after the projection (not `prj_no_ln`)."""
    distill_loss: Literal["smooth_l1", "l2"] = "smooth_l1"
    """Distance of the student's to the teacher's hidden states (`distill_loss_type`)."""
    distill_factor: float = Field(1.0, ge=0)
    """Weight of the distillation loss (`distill_loss_factor`: 1 for GPT-2, 20 for Llama)."""
    distill_div_std: bool = True
    """Divide each layer's distance by the std of the teacher's states (`distill_loss_div_std`,
    on in the scripts; off is the code's default)."""
    teacher_factor: float = Field(1.0, ge=0)
    """Weight of the teacher's cross-entropy (`ref_loss_factor`)."""
    teacher_last_step: bool = False
    """The teacher's chain keeps its last step (`include_last_cot`; off: on GSM8k-Aug the last
    step computes the answer the teacher then writes)."""


METHOD_CONFIGS: dict[str, type[MethodConfig]] = {
    "nocot": NoCoTConfig,
    "cot": CoTConfig,
    "pause": PauseConfig,
    "rim": RiMConfig,
    "coconut": CoconutConfig,
    "icot": ICoTConfig,
    "codi": CODIConfig,
}
"""Every method's settings by name, in the order of `rim.methods.METHODS`."""

if TYPE_CHECKING:  # the static view of the union built below from `METHOD_CONFIGS`
    AnyMethodConfig = (
        NoCoTConfig | CoTConfig | PauseConfig | RiMConfig | CoconutConfig | ICoTConfig | CODIConfig
    )
else:
    AnyMethodConfig = Annotated[
        Union[tuple(METHOD_CONFIGS.values())],  # noqa: UP007
        Field(discriminator="name"),
    ]
"""The settings of any registered method, told apart by `name`."""
