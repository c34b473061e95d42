"""Evaluation: accuracy after the final block, after any block, after each block; latency."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from rim.data.answers import check_answer, mean_digit_accuracy, parsable
from rim.data.records import Record
from rim.inference.infer import LoadedRun


def evaluate(
    run: LoadedRun,
    records: list[Record],
    checker: str = "exact",
    batch_size: int = 64,
    per_block: bool = True,
    latency_samples: int = 16,
    progress: Callable[[int], None] | None = None,
    one_pass: bool = True,
) -> dict:
    """Evaluate `run` on `records`. With `one_pass`, the answers after every block come from one
    prefill of question + K blocks (`LoadedRun.generate_every_block`); else one run per block.

    Returns a dict with `n`, `accuracy` (final block; the deployable number), `per_block`
    (accuracy after blocks 1..K, block methods only), `any_block_accuracy`,
    `latency_ms_per_question` (batched, final block), `ttft_ms` (batch 1, median),
    `cut_by_limit` (share of final generations that hit `max_new_tokens` before their end
    token), `unparsable` (share of final answers the checker cannot read: no `####` in a chain,
    not one number for `numeric`; see `rim.data.answers`), `predictions` and `correct` (per
    record), `block_predictions` (per record, the answer after each block), and with the
    `digits` checker `digit_accuracy` (final block, per digit). Every accuracy (final, per
    block, any block) scores the answers by the one rule of `rim.data.answers`.
    """
    for record in records:
        run.check_fits(record.question, record.origin or "record")
    questions = [r.question for r in records]
    blocks = list(range(1, run.blocks + 1)) if (per_block and run.blocks) else [None]
    correct: dict[int | None, list[bool]] = {k: [] for k in blocks}
    answers: dict[int | None, list[str]] = {k: [] for k in blocks}
    predictions: list[str] = []
    cut = 0
    batch_seconds = 0.0
    for i in range(0, len(records), batch_size):
        chunk = records[i : i + batch_size]
        questions_of_chunk = [r.question for r in chunk]
        if blocks != [None] and one_pass:  # every block's answer from one prefill
            gens = dict(zip(blocks, run.generate_every_block(questions_of_chunk)))
        else:
            gens = {k: run.generate(questions_of_chunk, k) for k in blocks}
        for k, gen in gens.items():
            texts = [run.answer_text(ids) for ids in gen.ids]
            correct[k].extend(check_answer(t, r.answer, checker) for t, r in zip(texts, chunk))
            answers[k].extend(texts)
            if k in (None, run.blocks):
                predictions.extend(texts)
                batch_seconds += gen.total_s
                cut += sum(len(ids) >= run.info.max_new_tokens for ids in gen.ids)
        if progress is not None:
            progress(len(chunk) * len(blocks))
    final = correct[run.blocks if run.blocks and per_block else None]
    result = {
        "n": len(records),
        "accuracy": sum(final) / len(final),
        "latency_ms_per_question": 1000 * batch_seconds / len(records),
        "ttft_ms": time_to_first_token(run, questions[:latency_samples]),
        "cut_by_limit": cut / len(records),
        "unparsable": sum(not parsable(p, checker) for p in predictions) / len(records),
        "predictions": predictions,
    }
    if checker == "digits":
        result["digit_accuracy"] = mean_digit_accuracy(predictions, [r.answer for r in records])
    result["correct"] = final
    if run.blocks and per_block:
        result["per_block"] = [sum(correct[k]) / len(records) for k in blocks]
        result["block_predictions"] = [list(col) for col in zip(*(answers[k] for k in blocks))]
        result["any_block_accuracy"] = sum(map(any, zip(*correct.values()))) / len(records)
    return result


def time_to_first_token(run: LoadedRun, questions: list[str], warmup: int = 2) -> float:
    """Median milliseconds from prompt to first answer token at batch 1 (after warm-up)."""
    if not questions:
        return float("nan")
    times = []
    warmup = min(warmup, len(questions))
    for i, q in enumerate([*questions[:warmup], *questions]):
        gen = run.method.generate(run.model, [run.question_ids(q)], max_new_tokens=1)
        if i >= warmup:
            times.append(gen.ttft_s * 1000)
    return statistics.median(times)
