"""`rim bench step`: what RiM's one-pass training layout costs against a plain SFT step.

RiM trains every readout of an example in one forward pass, under an additive 4D mask with
explicit position ids. The reference is a standard causal-LM step (a 2D all-ones mask, labels =
inputs, the model's own loss) over the same number of tokens: a batch of the same shape
[batch, length], filled with the examples' CoT text. Both are a full training step: forward
under autocast, backward, gradient clipping, AdamW step. Steps alternate between the layouts
(RiM stage 1, SFT of its shape, RiM stage 2, SFT of its shape), so a load that comes and goes on
the machine hits all of them alike; after warm-up, the median of the repeats is reported.

Stage 1 is laid out at curriculum progress 0, when every step readout is still present (its
longest sequences); stage 2 with K blocks and the answer after each. Building the batch (the
`collate` of the layout, done in the training process) is timed separately: `collate_ms`.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console

from rim.bench import report
from rim.bench.common import MemoryMeter, describe_model, model_config
from rim.bench.settings import STEP_PATHS, StepSettings
from rim.common.errors import RimInputError
from rim.core import losses
from rim.core.encoding import encode
from rim.core.generation import sync
from rim.data.generators.chain import generate_chain
from rim.methods import make_method
from rim.models.modeling import torch_device
from rim.training.optimizer import adamw

TARGET_RATIO = 1.3


PATH_SETTINGS = STEP_PATHS

COLUMNS = [
    report.Column("stage", "layout", align="left"),
    report.Column("batch", "batch"),
    report.Column("seq_len", "length"),
    report.Column("real_tokens", "non-pad tokens"),
    report.Column("rim_ms", "step (ms)", report.fixed(1)),
    report.Column("sft_ms", "SFT step (ms)", report.fixed(1)),
    report.Column("ratio", "ratio", report.fixed(2)),
    report.Column("collate_ms", "collate (ms)", report.fixed(1)),
    report.Column("ratio_with_collate", "ratio incl. collate", report.fixed(2)),
    report.Column("real_tokens_per_s", "padded: real tok/s", report.fixed(0)),
    report.Column("packed_shape", "packed rows x length", align="left"),
    report.Column("packed_real_tokens_per_s", "packed: real tok/s", report.fixed(0)),
    report.Column("packing_speedup", "packing speed-up", report.fixed(2)),
    report.Column("rim_peak_mib", "step peak above its start (MiB)", report.fixed(0)),
]


def run_step(settings: StepSettings, out: str | Path, console: Console | None = None) -> dict:
    """Time RiM stage-1 and stage-2 steps and matching SFT steps; write step.json/.md/.png."""
    out = Path(out)
    load = report.load_average()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch_device(settings.device)
    model, tok, method, examples = _setup(settings)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(params, settings.lr, 0.01)  # as the trainer builds it (torch's default decay)

    layouts: dict[str, dict[str, torch.Tensor]] = {}
    collate_ms: dict[str, float] = {}
    plans = [("stage1", method, "stage1", 0.0), ("stage2", method, "stage2", 1.0)]
    if settings.nocot:
        plans.append(("nocot", make_method("nocot", method.special), "baseline", 0.0))
    methods = {name: m for name, m, _, _ in plans}
    for name, m, stage, progress in plans:
        times = []
        for _ in range(max(3, settings.repeats // 2)):
            start = time.perf_counter()
            batch = m.collate(examples, stage, progress)
            times.append(time.perf_counter() - start)
        collate_ms[name] = 1000 * statistics.median(times)
        layouts[name] = {k: v.to(device) for k, v in batch.items()}
        layouts[f"sft-{name}"] = {
            k: v.to(device) for k, v in _sft_batch(examples, batch["input_ids"].shape, tok).items()
        }
        if settings.pack_length:
            packed = m.collate(examples, stage, progress, pack_length=settings.pack_length)
            layouts[f"packed-{name}"] = {k: v.to(device) for k, v in packed.items()}

    def method_step(name: str):
        return lambda batch: methods[name.removeprefix("packed-")].loss(model, batch)

    def sft_step(batch):
        return model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["input_ids"]
        ).loss

    timings: dict[str, list[float]] = {name: [] for name in layouts}
    peaks: dict[str, int] = {}
    meter = MemoryMeter(device.type == "cuda") if MemoryMeter.available(device.type == "cuda") else None
    with losses.full_logits() if settings.full_logits else contextlib.nullcontext():
        for i in range(settings.warmup + settings.repeats):
            for name, batch in layouts.items():
                loss_fn = sft_step if name.startswith("sft-") else method_step(name)
                if meter is not None:
                    meter.reset()
                    held = meter.read()["current"]
                seconds = _train_step(model, optimizer, params, loss_fn, batch, settings.precision, device)
                if i >= settings.warmup:
                    timings[name].append(seconds)
                    if meter is not None:
                        peaks[name] = max(peaks.get(name, 0), meter.read()["peak"] - held)

    rows = []
    for stage in methods:
        shape = layouts[stage]["input_ids"].shape
        rim_ms = 1000 * statistics.median(timings[stage])
        sft_ms = 1000 * statistics.median(timings[f"sft-{stage}"])
        tokens = shape[0] * shape[1]
        rows.append(
            {
                "stage": stage,
                "batch": shape[0],
                "seq_len": shape[1],
                "tokens": tokens,
                "real_tokens": int((layouts[stage]["input_ids"] != method.special.pad).sum()),
                "rim_ms": rim_ms,
                "sft_ms": sft_ms,
                "ratio": rim_ms / sft_ms,
                "collate_ms": collate_ms[stage],
                "ratio_with_collate": (rim_ms + collate_ms[stage]) / sft_ms,
                "rim_tokens_per_s": tokens / rim_ms * 1000,
                "sft_tokens_per_s": tokens / sft_ms * 1000,
                "meets_target": rim_ms / sft_ms <= TARGET_RATIO,
                "real_tokens_per_s": int((layouts[stage]["input_ids"] != method.special.pad).sum())
                / rim_ms
                * 1000,
                **_packed(layouts, timings, stage, method.special.pad, rim_ms),
                "rim_peak_mib": peaks[stage] / 2**20 if stage in peaks else None,
                "sft_peak_mib": peaks[f"sft-{stage}"] / 2**20 if f"sft-{stage}" in peaks else None,
                "rim_ms_repeats": [1000 * s for s in timings[stage]],
                "sft_ms_repeats": [1000 * s for s in timings[f"sft-{stage}"]],
            }
        )
    result = {
        "device": report.device_description(settings.device),
        "model": describe_model(model),
        "attention": getattr(model.config, "_attn_implementation", None),
        "settings": settings.model_dump(),
        "target_ratio": TARGET_RATIO,
        "environment": report.environment(load),
        "rows": rows,
    }
    _write(result, out, console)
    return result


def _packed(layouts, timings, stage: str, pad: int, rim_ms: float) -> dict:
    """The packed layout's shape, step time and real tokens per second, if it was timed."""
    if f"packed-{stage}" not in layouts:
        return {"packed_shape": "-", "packed_real_tokens_per_s": None, "packing_speedup": None}
    ids = layouts[f"packed-{stage}"]["input_ids"]
    ms = 1000 * statistics.median(timings[f"packed-{stage}"])
    real = int((ids != pad).sum())
    return {
        "packed_rows": ids.shape[0],
        "packed_len": ids.shape[1],
        "packed_ms": ms,
        "packed_shape": f"{ids.shape[0]} x {ids.shape[1]}",
        "packed_real_tokens_per_s": real / ms * 1000,
        "packing_speedup": rim_ms / ms,
    }


def _setup(s: StepSettings):
    """The model (scratch preset, tokenizer trained on the chains), RiM, tokenised chains."""
    from rim.models.modeling import build_model, scratch_tokenizer, special_ids

    cfg = model_config(s.model)
    if cfg.name_or_path is not None:
        raise RimInputError(
            "the step benchmark builds a model from scratch: give a preset without name_or_path",
            source=s.model,
        )
    if s.data is not None:
        import random

        from rim.data.readers import read_records

        pool = read_records(s.data)
        records = random.Random(s.seed).sample(pool, min(s.batch_size, len(pool)))
    else:
        records = generate_chain(s.batch_size, seed=s.seed, ops=s.ops)
    torch.manual_seed(s.seed)
    tok = scratch_tokenizer([t for r in records for t in (r.question, *r.steps, r.answer)], cfg.vocab_size)
    model = build_model(cfg.scratch, tok, cfg.max_length)
    if s.vocab_size is not None:
        if s.vocab_size < len(tok):
            raise RimInputError(
                f"vocab_size {s.vocab_size} is below the tokenizer's {len(tok)}", source="vocab_size"
            )
        model.resize_token_embeddings(s.vocab_size, mean_resizing=False)
    method = make_method("rim", special_ids(tok), blocks=s.blocks, block_size=s.block_size)
    return model, tok, method, [encode(r, tok) for r in records]


def _sft_batch(examples, shape: torch.Size, tok) -> dict[str, torch.Tensor]:
    """A plain causal-LM batch of `shape`: each row the examples' question + CoT text, repeated
    to fill the row; an all-ones 2D attention mask."""
    rows = []
    for b in range(shape[0]):
        ex = examples[b % len(examples)]
        text = [*ex.question, *ex.cot, tok.eos_token_id]
        rows.append((text * (shape[1] // len(text) + 1))[: shape[1]])
    ids = torch.tensor(rows, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _train_step(model, optimizer, params, loss_fn, batch, precision: str, device: torch.device) -> float:
    """One optimizer step (forward, backward, clip, AdamW); its synchronised seconds."""
    sync(device)
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = loss_fn(batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    sync(device)
    return time.perf_counter() - start


def _write(result: dict, out: Path, console: Console | None) -> None:
    s = result["settings"]
    title = f"Training step: RiM one-pass layout vs plain SFT, {result['device']}"
    notes = [
        f"Model: {result['model'].get('model_type')} {result['model']['parameters'] / 1e6:.1f}M "
        f"parameters, autocast {s['precision']}, attention {result['attention']}. "
        f"{'Records of ' + s['data'] if s['data'] else 'Digit chains of {} moves'.format(s['ops'])}, "
        f"batch {s['batch_size']}; stage 1 at curriculum progress 0 (every "
        f"step readout), stage 2 with K = {s['blocks']} blocks of M = {s['block_size']}. "
        "SFT: the same [batch, length] of CoT text, 2D causal mask, the model's own loss.",
        f"Step = forward + backward + clip + AdamW; median of {s['repeats']} after "
        f"{s['warmup']} warm-up steps. Target: ratio at most {result['target_ratio']}."
        + (
            f" Packed: the same examples in rows of at most {s['pack_length']} tokens, dense 4D mask."
            if s["pack_length"]
            else ""
        ),
        f"Vocabulary {result['model'].get('vocab_size', '?')}; the methods' LM head "
        + (
            "at every position (full logits, the path before head-only)."
            if s["full_logits"]
            else "only at labelled positions (rim.core.losses); SFT's at every position."
        ),
        "Step peak: the most memory a timed step held above what was held when it started (CUDA's "
        "allocator, or the process's resident set on CPU, where freed memory the allocator keeps "
        "counts as held).",
        report.load_note(result["environment"]),
    ]
    report.publish(out, "step", result, title, result["rows"], COLUMNS, notes, plot, console)


def plot(result: dict, path: Path) -> Path | None:
    """Step time of each RiM layout next to the SFT step of the same shape."""
    plt = report.pyplot()
    if plt is None:
        return None
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(6, 4))
    report.grouped_bars(
        ax,
        [f"{r['stage']}\n{r['batch']}x{r['seq_len']}" for r in rows],
        {
            "RiM one pass (4D mask)": [r["rim_ms"] for r in rows],
            "SFT (2D causal mask)": [r["sft_ms"] for r in rows],
        },
    )
    for i, r in enumerate(rows):
        ax.annotate(f"{r['ratio']:.2f}x", (i, max(r["rim_ms"], r["sft_ms"])), ha="center", va="bottom")
    ax.set_ylabel("ms per training step")
    ax.set_ylim(0, 1.35 * max(max(r["rim_ms"], r["sft_ms"]) for r in rows))
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    ax.set_title(result["device"], fontsize=9)
    return report.save_figure(fig, path)
