"""Coconut: cached thought passes equal a plain loop, the batched loss equals a per-example one,
the curriculum lays out the expected sequences, batched generation equals unbatched, and a tiny
run trains every stage and evaluates."""

import json

import pytest
import torch
from helpers import ARCHS, RECORDS, tiny_model, tiny_tokenizer, write_jsonl

from rim.common.errors import RimInputError
from rim.common.progress import Reporter
from rim.config import config_from_dict
from rim.core.encoding import Example, encode
from rim.core.generation import left_pad
from rim.core.thoughts import think
from rim.data.answers import digit_accuracy
from rim.data.generators.chain import generate_chain
from rim.inference.evaluate import evaluate
from rim.inference.infer import load_run
from rim.methods import SpecialIds, make_method
from rim.methods.coconut import Coconut
from rim.models.modeling import special_ids
from rim.training.prepare import _check_fits
from rim.training.run import run_training

TOL = 1e-5


def embed(model, ids):
    return model.get_input_embeddings()(torch.tensor(ids))


def plain_thoughts(model, prefix, n):
    """No cache, no padding: re-run the whole embedding sequence for every thought."""
    embeds, states = embed(model, prefix), []
    for _ in range(n):
        states.append(model(inputs_embeds=embeds[None], output_hidden_states=True).hidden_states[-1][0, -1])
        embeds = torch.cat([embeds, states[-1][None]])
    return embeds, states


def coconut(tok, c=2, stages=2):
    return make_method("coconut", special_ids(tok), thoughts_per_step=c, latent_stages=stages)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_cached_thought_passes_equal_uncached_loop(arch):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=2)
    method, n = coconut(tok), 4
    prompts = [method.prompt(encode(r, tok).question) for r in RECORDS]
    assert len({len(p) for p in prompts}) > 1, "questions of different lengths need padding"
    ids, mask = left_pad(prompts, method.special.pad)
    mask = torch.cat([mask, torch.ones(len(prompts), n + 1, dtype=torch.long)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        thinking = think(model, ids, mask, positions, n)
        close = torch.full((len(prompts), 1), method.special.close)
        logits = model(**thinking.then(model, close, mask, positions)).logits[:, -1]
        for b, prompt in enumerate(prompts):
            embeds, states = plain_thoughts(model, prompt, n)
            for i in range(n):
                torch.testing.assert_close(thinking.thoughts[i][b], states[i], atol=TOL, rtol=0)
            embeds = torch.cat([embeds, embed(model, [method.special.close])])
            ref = model(inputs_embeds=embeds[None]).logits[0, -1]
            torch.testing.assert_close(logits[b], ref, atol=TOL, rtol=0)
    assert thinking.passes == n  # the prefill and n - 1 thoughts; the last goes with `</b>`


def manual_loss(model, method, examples, stage):
    """Per example, without padding or cache: summed text NLL over all examples / text tokens."""
    total, count = 0.0, 0
    for ex in examples:
        seq = method.sequence(ex, stage)
        embeds, _ = plain_thoughts(model, seq.prefix, seq.thoughts)
        embeds = torch.cat([embeds, embed(model, [method.special.close, *seq.text])])
        logits = model(inputs_embeds=embeds[None]).logits[0]
        start = len(seq.prefix) + seq.thoughts  # the `</b>` row predicts the first text token
        targets = torch.tensor([*seq.text, method.special.eos])
        total = total + torch.nn.functional.cross_entropy(logits[start:], targets, reduction="sum")
        count += len(targets)
    return total / count


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("stage", ["coconut1", "coconut2"])
def test_training_loss_and_gradients_equal_per_example_computation(arch, stage):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=4)
    method = coconut(tok)
    examples = [encode(r, tok) for r in RECORDS]
    params = [p for p in model.parameters() if p.requires_grad]
    loss = method.loss(model, method.collate(examples, stage, 0.0))
    ref = manual_loss(model, method, examples, stage)
    torch.testing.assert_close(loss, ref, atol=TOL, rtol=0)
    # equal gradients: they flow through the thought chain exactly as without cache
    grads = torch.autograd.grad(loss, params)
    ref_grads = torch.autograd.grad(ref, params)
    for g, r in zip(grads, ref_grads):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, r, atol=TOL, rtol=1e-4)


class Wrapped(torch.nn.Module):
    """Like DistributedDataParallel: the model under `.module`, forward passed through, and
    none of the model's own methods (multi-process training hands the loss such a wrapper)."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, **inputs):
        return self.module(**inputs)


@pytest.mark.parametrize("name", ["coconut", "codi"])
def test_thought_losses_run_inside_a_ddp_like_wrapper(name):
    tok = tiny_tokenizer()
    model = tiny_model("gpt2", tok, seed=4)
    method = make_method(name, special_ids(tok), **({"thoughts_per_step": 1} if name == "coconut" else {}))
    method.attach(model)
    examples = [encode(r, tok) for r in RECORDS]
    stage = "coconut2" if name == "coconut" else "codi"
    batch = method.collate(examples, stage, 0.0)
    assert not hasattr(Wrapped(model), "get_input_embeddings")
    torch.testing.assert_close(method.loss(Wrapped(model), batch), method.loss(model, batch), atol=0, rtol=0)


SPECIAL = SpecialIds(open=90, memory=91, close=92, eos=93, pad=0)
SEP = (30, 31)  # " ####"
LONG = Example(
    question=(1, 2, 3), steps=((10, 11), (12,), (13, 14)), answer=(20,), cot=(10, 11, 12, 13, 14, *SEP, 20)
)
SHORT = Example(question=(4,), steps=((15,),), answer=(21, 22), cot=(15, *SEP, 21, 22))


@pytest.mark.parametrize(
    "stage,tokens,labels",
    [
        ("coconut0", [1, 2, 3, 90, 92, 10, 11, 12, 13, 14, 30, 31, 20], [10, 11, 12, 13, 14, 30, 31, 20, 93]),
        ("coconut1", [1, 2, 3, 90, 91, 91, 92, 12, 13, 14, 30, 31, 20], [12, 13, 14, 30, 31, 20, 93]),
        ("coconut2", [1, 2, 3, 90, 91, 91, 91, 91, 92, 13, 14, 30, 31, 20], [13, 14, 30, 31, 20, 93]),
    ],
)
def test_curriculum_sequences(stage, tokens, labels):
    method = make_method("coconut", SPECIAL, thoughts_per_step=2, latent_stages=2)
    batch = method.collate([LONG], stage, 0.0)
    assert batch["input_ids"][0].tolist() == tokens
    assert batch["attention_mask"][0].tolist() == [1] * len(tokens)
    assert batch["position_ids"][0].tolist() == list(range(len(tokens)))
    close = len(tokens) - len(labels)  # `</b>` predicts the first text token
    assert tokens[close] == SPECIAL.close
    assert batch["labels"][0, close:].tolist() == labels
    assert (batch["labels"][0, :close] == -100).all()
    assert method.sequence_length(LONG, stage) == len(tokens)


def test_final_stage_removes_every_step_with_all_thoughts():
    method = make_method("coconut", SPECIAL, thoughts_per_step=1, latent_stages=2, final_stage=True)
    assert method.stages == ("coconut0", "coconut1", "coconut2", "coconut-final")
    assert method.settings("coconut-final") == "coconut_final"
    # LONG has 3 steps: stage 2 keeps the third as text, the final stage keeps none
    assert method.collate([LONG], "coconut2", 0.0)["input_ids"][0].tolist() == [
        1,
        2,
        3,
        90,
        91,
        91,
        92,
        13,
        14,
        30,
        31,
        20,
    ]
    batch = method.collate([LONG, SHORT], "coconut-final", 0.0)
    assert int(batch["thoughts"]) == 2
    assert batch["input_ids"].tolist() == [
        [1, 2, 3, 90, 91, 91, 92, 30, 31, 20, 0],
        [0, 0, 4, 90, 91, 91, 92, 30, 31, 21, 22],
    ]
    assert batch["labels"].tolist() == [
        [-100] * 6 + [30, 31, 20, 93, -100],
        [-100] * 6 + [30, 31, 21, 22, 93],
    ]
    assert method.sequence_length(LONG, "coconut-final") == 10
    assert make_method("coconut", SPECIAL, latent_stages=2).stages[-1] == "coconut2"


def test_fewer_steps_than_stage_still_get_all_thoughts_and_batch_aligns():
    method = make_method("coconut", SPECIAL, thoughts_per_step=2, latent_stages=2)
    batch = method.collate([LONG, SHORT], "coconut2", 0.0)
    assert int(batch["prefix_len"]) == 4 and int(batch["thoughts"]) == 4
    assert batch["input_ids"].tolist() == [
        [1, 2, 3, 90, 91, 91, 91, 91, 92, 13, 14, 30, 31, 20],
        [0, 0, 4, 90, 91, 91, 91, 91, 92, 30, 31, 21, 22, 0],
    ]
    assert batch["attention_mask"][1].tolist() == [0, 0] + [1] * 11 + [0]
    assert method.tokens(batch) == 14 + 11  # what throughput counts: no padding
    assert batch["position_ids"][1, 2:13].tolist() == list(range(11))
    assert batch["labels"][1].tolist() == [-100] * 8 + [30, 31, 21, 22, 93, -100]


def test_stages_settings_and_registration():
    tok = tiny_tokenizer()
    method = coconut(tok, c=3, stages=2)
    assert method.stages == ("coconut0", "coconut1", "coconut2")
    assert {method.settings(s) for s in method.stages} == {"coconut"}
    assert (method.thoughts_per_step, method.latent_stages) == (3, 2)
    cfg = config_from_dict({"method": {"name": "coconut", "thoughts_per_step": 3}})
    assert cfg.method.model_dump(exclude={"name", "first_stage"}) == {
        "thoughts_per_step": 3,
        "latent_stages": 3,
        "final_stage": False,
    }
    with pytest.raises(ValueError):
        method.settings("stage1")


def test_context_check_counts_thoughts():
    tok = tiny_tokenizer()
    method, record = coconut(tok, c=2, stages=2), RECORDS[0]
    ex = encode(record, tok)
    longest = max(method.sequence_length(ex, s) for s in method.stages)
    _check_fits(record, ex, method, longest)
    with pytest.raises(RimInputError, match="positions"):
        _check_fits(record, ex, method, longest - 1)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_batched_generate_equals_unbatched(arch):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=5)
    method = coconut(tok, c=2, stages=2)
    questions = [encode(r, tok).question for r in RECORDS]
    batched = method.generate(model, questions, max_new_tokens=6)
    single = [method.generate(model, [q], max_new_tokens=6) for q in questions]
    assert batched.ids == [g.ids[0] for g in single]
    exact = method.generate(model, questions[:1], max_new_tokens=5, ignore_eos=True)
    assert len(exact.ids[0]) == 5
    assert exact.forward_passes == 1 + 3 + 1 + 4  # prefill, 3 thoughts, thought 4 + `</b>`, 4 decode steps
    assert 0 < exact.ttft_s <= exact.total_s
    fewer = method.generate(model, questions[:1], max_new_tokens=5, ignore_eos=True, latent_stages=1)
    assert fewer.forward_passes == 1 + 1 + 1 + 4


@pytest.mark.parametrize("arch", list(ARCHS))
def test_thought_passes_run_the_output_head_on_no_position(arch):
    """Only the pass after the last thought and the decoding steps need logits: the prefill and
    the thought passes hand the output head no row (at GPT-2-small shapes, a fifth of the time
    to the first answer token)."""
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=5)
    rows: list[int] = []
    head = model.get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[:-1].numel()))
    method = coconut(tok, c=2, stages=2)
    method.generate(model, [encode(RECORDS[0], tok).question], max_new_tokens=3, ignore_eos=True)
    hook.remove()
    assert rows == [0, 0, 0, 0, 1, 1, 1]  # prefill, 3 thoughts; thought 4 + `</b>`; 2 decoding steps


def test_tiny_run_trains_every_stage_and_evaluates(tmp_path):
    rows = [r.to_dict() for r in generate_chain(24, 0, ops=2)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", [r.to_dict() for r in generate_chain(6, 1, ops=2)])
    cfg = config_from_dict(
        {
            "model": {
                "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
                "vocab_size": 48,
                "max_length": 64,
            },
            "data": {"train": str(train), "eval": str(test)},
            "method": {"name": "coconut", "thoughts_per_step": 1, "latent_stages": 1, "final_stage": True},
            "trainer": {
                "batch_size": 8,
                "log_every": 1,
                "max_new_tokens": 12,
                "eval_batch_size": 4,
                "coconut": {"steps": 2, "lr": 1e-3},
                "coconut_final": {"steps": 2, "lr": 1e-3},
            },
        }
    )
    result = run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    run_dir = tmp_path / "run"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    metrics = [r for r in metrics if "loss" in r]  # the step rows
    stages = ["coconut0", "coconut1", "coconut-final"]
    assert [r["stage"] for r in metrics] == [s for s in stages for _ in range(2)]
    for name in stages:
        assert (run_dir / "checkpoints" / name / "model.safetensors").is_file()
    assert 0 <= result["accuracy"] <= 1
    run = load_run(run_dir, device="cpu")
    assert isinstance(run.method, Coconut) and run.method.latent_stages == 1
    assert run.method.config.final_stage
    out = evaluate(run, generate_chain(4, 2, ops=2))
    assert 0 <= out["accuracy"] <= 1 and len(out["predictions"]) == 4
    assert "digit_accuracy" not in out
    records = generate_chain(4, 2, ops=2)
    digits = evaluate(run, records, checker="digits")
    assert digits["digit_accuracy"] == pytest.approx(
        sum(digit_accuracy(p, r.answer) for p, r in zip(digits["predictions"], records)) / 4
    )


def test_inference_prompt_length_counts_the_thoughts():
    tok = tiny_tokenizer()
    method = make_method("coconut", special_ids(tok), thoughts_per_step=2, latent_stages=3)
    question = encode(RECORDS[0], tok).question
    assert method.prompt_length(question) == len(question) + 1 + 2 * 3 + 1
    rim = make_method("rim", special_ids(tok), blocks=4, block_size=2)
    assert rim.prompt_length(question) == len(question) + 4 * 4


def test_only_the_all_latent_stage_is_selectable():
    special = SpecialIds(0, 1, 2, 3, 4)
    final = make_method("coconut", special, latent_stages=2, final_stage=True)
    assert [s for s in final.stages if final.selectable(s)] == ["coconut-final"]
    last = make_method("coconut", special, latent_stages=2, first_stage=1)
    assert [s for s in last.stages if last.selectable(s)] == ["coconut2"]
    with pytest.raises(ValueError):
        last.selectable("coconut0")  # not a stage of this run
    for name in ("nocot", "cot", "pause", "rim"):
        method = make_method(name, special)
        assert all(method.selectable(s) for s in method.stages)


def test_keep_best_never_keeps_an_earlier_stage(tmp_path, monkeypatch):
    """Stub validation scores favour stage 0 (which still writes text steps): the kept model
    is the final stage's best, and the earlier evaluations are logged as not selectable."""
    from safetensors.torch import load_file

    import rim.training.validation

    scores = iter([0.9, 0.9, 0.8, 0.8, 0.2, 0.1])
    monkeypatch.setattr(
        rim.training.validation, "evaluate", lambda *args, **kwargs: {"accuracy": next(scores)}
    )
    rows = [r.to_dict() for r in generate_chain(16, 0, ops=2)]
    data = {"train": str(write_jsonl(tmp_path / "train.jsonl", rows))}
    cfg = config_from_dict(
        {
            "model": {
                "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
                "vocab_size": 48,
                "max_length": 64,
            },
            "data": {**data, "eval": data["train"]},
            "method": {"name": "coconut", "thoughts_per_step": 1, "latent_stages": 1, "final_stage": True},
            "trainer": {
                "batch_size": 8,
                "report_to": [],
                "max_new_tokens": 12,
                "eval_every": 1,
                "select": "best",
                "coconut": {"steps": 2, "lr": 1e-3},
                "coconut_final": {"steps": 2, "lr": 1e-3},
            },
        }
    )
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    run_dir = tmp_path / "run"
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r.get("event") == "eval"]
    assert [(r["stage"], r["selectable"], r["improved"]) for r in evals] == [
        ("coconut0", False, False),
        ("coconut0", False, False),
        ("coconut1", False, False),
        ("coconut1", False, False),
        ("coconut-final", True, True),
        ("coconut-final", True, False),
    ]
    assert evals[-1]["best_accuracy"] == 0.2
    final = load_file(str(run_dir / "model" / "model.safetensors"))
    best = load_file(str(run_dir / "checkpoints" / "best" / "model.safetensors"))
    last = load_file(str(run_dir / "checkpoints" / "coconut-final" / "model.safetensors"))
    shared = final.keys() & best.keys()
    assert len(shared) > 5
    assert all(torch.equal(final[k], best[k]) for k in shared)  # the final stage's first step
    assert not all(torch.equal(final[k], last[k]) for k in shared)  # not its last
