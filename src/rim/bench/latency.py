"""`rim bench latency`: how long each method takes to answer, on one model.

Every method runs on the same weights (a random model of a preset, or a trained run); methods
differ only in their prompt and decoding. Lengths are forced (`ignore_eos=True`), so an untrained
model answers exactly as long as a trained one would:

* no-CoT, pause, RiM: the answer, A tokens; pause and RiM prompts carry K blocks of M + 2 tokens
  (one prefill);
* CoT: a chain of C tokens (steps and separator), then the A answer tokens;
* Coconut: its continuous thoughts (c x L passes, L = latent stages, default K), then A tokens.

Per method and batch size, after warm-up, the median over repeats of:

* `ttft_ms`: time to the first *answer* token, from the prefill to the synchronised token:
  the method's own `Generation.ttft_s` (Coconut's thoughts included), and for CoT, whose first
  token is not the answer, the whole time of a separate generation of C + 1 tokens;
* `latency_ms`: the whole answer (C + A or A tokens);
* `answers_per_s`: batch / latency;
* `forward_passes`, `generated_tokens`, `prompt_tokens` per question.

Repeats go round the methods in turn, so a load that comes and goes on the machine spreads over
all methods alike.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any, cast

import torch
from rich.console import Console

from rim.bench import report
from rim.bench.common import (
    BenchModel,
    bench_model,
    build_method,
    default_methods,
    describe_model,
    model_config,
)
from rim.bench.settings import LATENCY_PATHS, LatencySettings
from rim.common.errors import RimInputError
from rim.methods import Method
from rim.models.modeling import DTYPES, context_length, torch_device

PATH_SETTINGS = LATENCY_PATHS

COLUMNS = [
    report.Column("method", "method", align="left"),
    report.Column("batch", "batch"),
    report.Column("ttft_ms", "first answer token (ms)", report.fixed(2)),
    report.Column("latency_ms", "full answer (ms)", report.fixed(2)),
    report.Column("answers_per_s", "answers/s", report.fixed(1)),
    report.Column("forward_passes", "forward passes"),
    report.Column("generated_tokens", "generated tokens"),
    report.Column("prompt_tokens", "prompt tokens"),
    report.Column("ttft_vs_nocot", "TTFT / no-CoT", report.fixed(2)),
]


def run_latency(settings: LatencySettings, out: str | Path, console: Console | None = None) -> dict[str, Any]:
    """Time every method of `settings` at every batch size; write latency.json/.md/.png to `out`."""
    out = Path(out)
    load = report.load_average()
    methods = settings.methods or default_methods()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    bench, blocks, block_size = _load(settings)
    model = bench.model.to(torch_device(settings.device)).eval()  # type: ignore[arg-type]  # @wraps(Module.to) keeps `self`
    latent = settings.latent_stages if settings.latent_stages is not None else blocks
    built = {
        name: build_method(
            name,
            bench.special,
            blocks=blocks,
            block_size=block_size,
            thoughts_per_step=settings.thoughts_per_step,
            latent_stages=latent,
            thoughts=settings.thoughts,
        )
        for name in methods
    }
    for method in built.values():  # the methods' own modules (CODI's projection), as built
        method.attach(model)
    settings = _fit_question(settings, model, built)
    pool = _questions(settings, bench, max(settings.batches))
    settings = _fit_chain(settings, model, built, pool)
    _check_context(model, built, pool, settings)

    rows = []
    for batch in settings.batches:
        questions = pool[:batch]
        timings: dict[str, dict[str, list[float]]] = {
            name: {"ttft": [], "total": [], "first": []} for name in methods
        }
        last = {}
        for i in range(settings.warmup + settings.repeats):
            for name, method in built.items():
                before = settings.chain_tokens if method.writes_chain else 0
                full = method.generate(model, questions, before + settings.answer_tokens, ignore_eos=True)
                ttft = full.ttft_s
                if before:  # the answer starts after the chain: time a run up to its 1st token
                    ttft = method.generate(model, questions, before + 1, ignore_eos=True).total_s
                if i >= settings.warmup:
                    timings[name]["ttft"].append(ttft)
                    timings[name]["total"].append(full.total_s)
                    timings[name]["first"].append(full.ttft_s)
                last[name] = full
        for name, method in built.items():
            t = timings[name]
            latency = statistics.median(t["total"])
            gen = last[name]
            tokens = statistics.mean(len(ids) for ids in gen.ids)
            rows.append(
                {
                    "method": name,
                    "batch": batch,
                    "ttft_ms": 1000 * statistics.median(t["ttft"]),
                    "latency_ms": 1000 * latency,
                    "answers_per_s": batch / latency,
                    "forward_passes": gen.forward_passes,
                    "generated_tokens": tokens,
                    "passes_without_token": gen.forward_passes - round(tokens),
                    "prompt_tokens": statistics.mean(len(method.prompt(q)) for q in questions),
                    "first_token_ms": 1000 * statistics.median(t["first"]),
                    "ttft_ms_repeats": [1000 * s for s in t["ttft"]],
                    "latency_ms_repeats": [1000 * s for s in t["total"]],
                }
            )
    _add_ratios(rows)

    result = {
        "device": report.device_description(settings.device),
        "model": {"source": bench.source, **describe_model(model)},
        "settings": {
            **settings.model_dump(),
            "methods": methods,
            "blocks": blocks,
            "block_size": block_size,
            "latent_stages": latent,
        },
        "environment": report.environment(load),
        "rows": rows,
    }
    _write(result, out, console)
    return result


def _load(s: LatencySettings) -> tuple[BenchModel, int, int]:
    if s.run is not None:
        from rim.inference.infer import load_run

        run = load_run(s.run, device="cpu")
        run.model.to(DTYPES[s.dtype])  # type: ignore[arg-type]  # @wraps(Module.to) keeps `self`
        trained = run.info.method
        blocks = s.blocks or cast(int, getattr(trained, "blocks", 8))
        block_size = s.block_size or cast(int, getattr(trained, "block_size", 2))
        bench = BenchModel(run.model, run.method.special, (0, len(run.tok)), run.tok, str(s.run))
        return bench, blocks, block_size
    bench = bench_model(model_config(s.model), s.dtype, s.seed)
    return bench, s.blocks or 8, 2 if s.block_size is None else s.block_size


def _questions(s: LatencySettings, bench: BenchModel, n: int) -> list[tuple[int, ...]]:
    """`n` tokenised questions: from `s.data`, or random plain tokens."""
    if s.data is not None:
        if bench.tok is None:
            raise RimInputError(
                "questions from a data file need a tokenizer: give a trained run or a pretrained model",
                source=s.data,
            )
        from rim.core.encoding import encode
        from rim.data.readers import read_records

        records = read_records(s.data)
        if not records:
            raise RimInputError("no records", source=s.data)
        return [encode(records[i % len(records)], bench.tok).question for i in range(n)]
    rng = random.Random(s.seed)
    specials = set(bench.tok.all_special_ids) if bench.tok is not None else set()
    specials |= {bench.special.open, bench.special.memory, bench.special.close}
    plain = [i for i in range(*bench.plain_ids) if i not in specials]
    return [tuple(rng.choice(plain) for _ in range(s.question_tokens)) for _ in range(n)]


def _fit_question(s: LatencySettings, model, methods: dict[str, Method]) -> LatencySettings:
    """With a trained run, random questions left at the default length are cut to what the run's
    context holds beside the longest prompt's blocks and the answer (and a chain of at least
    one token where CoT is timed)."""
    limit = context_length(model)
    if s.run is None or s.data is not None or limit is None or "question_tokens" in s.model_fields_set:
        return s
    blocks = max(m.prompt_length((0,)) - 1 for m in methods.values())
    chain = 1 if any(m.writes_chain for m in methods.values()) else 0
    room = limit - s.answer_tokens - blocks - chain
    return s.model_copy(update={"question_tokens": max(1, min(s.question_tokens, room))})


def _fit_chain(s: LatencySettings, model, methods: dict[str, Method], questions) -> LatencySettings:
    """With a trained run, a CoT chain left at the default length is cut to what the run's
    context holds after the longest question and before the answer."""
    limit = context_length(model)
    chained = [m for m in methods.values() if m.writes_chain]
    if s.run is None or limit is None or not chained or "chain_tokens" in s.model_fields_set:
        return s
    longest = max(m.prompt_length(q) for m in chained for q in questions)
    room = limit - longest - s.answer_tokens
    return s.model_copy(update={"chain_tokens": max(0, min(s.chain_tokens, room))})


def _check_context(model, methods: dict[str, Method], questions, s: LatencySettings) -> None:
    limit = context_length(model)
    if limit is None:
        return
    for name, method in methods.items():
        longest = max(len(method.prompt(q)) for q in questions)
        need = longest + s.answer_tokens + (s.chain_tokens if method.writes_chain else 0)
        if need > limit:
            fix = (
                "pass shorter --question-tokens, --chain-tokens or --answer-tokens, fewer "
                "--blocks, or --data with shorter questions"
                if s.run is not None
                else "raise model.max_length in the --model preset, or pass shorter "
                "--question-tokens, --chain-tokens or --answer-tokens"
            )
            raise RimInputError(
                f"{name} needs {need} positions, more than the model's context of {limit}: {fix}",
                source="latency settings",
            )


def _add_ratios(rows: list[dict]) -> None:
    base = {r["batch"]: r for r in rows if r["method"] == "nocot"}
    for r in rows:
        ref = base.get(r["batch"])
        r["ttft_vs_nocot"] = r["ttft_ms"] / ref["ttft_ms"] if ref else None
        r["latency_vs_nocot"] = r["latency_ms"] / ref["latency_ms"] if ref else None


def _write(result: dict, out: Path, console: Console | None) -> None:
    s = result["settings"]
    title = f"Latency on {result['device']}"
    notes = [
        f"Model: {result['model']['source']} {result['model'].get('model_type', '')}, "
        f"{result['model']['parameters'] / 1e6:.1f}M parameters, {result['model']['dtype']}. "
        f"Question {s['question_tokens']} tokens, answer {s['answer_tokens']}, CoT chain "
        f"{s['chain_tokens']} + answer; K = {s['blocks']} blocks of M = {s['block_size']}; "
        f"Coconut {s['thoughts_per_step']} x {s['latent_stages']} thoughts, CODI {s['thoughts']}; "
        f"lengths forced (ignore_eos). Median of {s['repeats']} repeats after {s['warmup']} "
        "warm-up rounds.",
        "First answer token: for CoT after the whole chain; for Coconut and CODI after their thoughts.",
        report.load_note(result["environment"]),
    ]
    report.publish(out, "latency", result, title, result["rows"], COLUMNS, notes, plot, console)


def plot(result: dict, path: Path) -> Path | None:
    """Time to first answer token and answers per second, per method and batch size."""
    plt = report.pyplot()
    if plt is None:
        return None
    rows = result["rows"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    batches = list(dict.fromkeys(r["batch"] for r in rows))
    value = {(r["method"], r["batch"]): r for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in (
        (axes[0], "ttft_ms", "time to first answer token (ms)"),
        (axes[1], "answers_per_s", "answers per second"),
    ):
        series = {f"batch {b}": [value[(m, b)][key] for m in methods] for b in batches}
        report.grouped_bars(ax, methods, series)
        report.log_axis(ax)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{result['device']}; model {result['model']['parameters'] / 1e6:.1f}M params", fontsize=9)
    return report.save_figure(fig, path)
