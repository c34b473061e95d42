"""CODI: the teacher's and the student's sequences and where they are distilled, each loss term
(teacher CE, student CE, distillation) and its gradients equal to a per-example computation
without cache or padding written from the paper's definition, batched generation equal to
unbatched, and a tiny run that trains, saves its projection apart, reloads and evaluates."""

import json

import pytest
import torch
from helpers import ARCHS, RECORDS, tiny_model, tiny_tokenizer, write_jsonl

from rim.common.errors import RimInputError
from rim.common.progress import Reporter
from rim.config import config_from_dict
from rim.core.encoding import Example, decode_text, encode
from rim.data.generators.chain import generate_chain
from rim.data.generators.multiplication import multiplication_record
from rim.inference.evaluate import evaluate
from rim.inference.infer import load_run
from rim.methods import SpecialIds, make_method
from rim.methods.codi import CODI, PROJECTION, answer_tail
from rim.models.modeling import scratch_tokenizer, special_ids
from rim.training.run import run_training

TOL = 1e-5
SPECIAL = SpecialIds(open=90, memory=91, close=92, eos=93, pad=0)
SEP = (30, 31)  # " ####"
LONG = Example(
    question=(1, 2, 3), steps=((10, 11), (12,), (13, 14)), answer=(20,), cot=(10, 11, 12, 13, 14, *SEP, 20)
)
SHORT = Example(question=(4,), steps=((15,),), answer=(21, 22), cot=(15, *SEP, 21, 22))


def test_teacher_and_student_sequences_and_the_distilled_positions():
    method = make_method("codi", SPECIAL, thoughts=2)
    batch = method.collate([LONG, SHORT], "codi")
    # teacher: question, the steps but the last, ` #### answer`; scored after the question
    assert batch["teacher_ids"].tolist() == [
        [1, 2, 3, 10, 11, 12, 30, 31, 20],
        [4, 30, 31, 21, 22, 0, 0, 0, 0],
    ]
    assert batch["teacher_labels"].tolist() == [
        [-100, -100, 10, 11, 12, 30, 31, 20, 93],
        [30, 31, 21, 22, 93, -100, -100, -100, -100],
    ]
    assert batch["teacher_mask"].sum(1).tolist() == [9, 5]
    # the teacher's state before the answer: the last separator token of each row
    assert [batch["teacher_ids"][b, int(i)].item() for b, i in enumerate(batch["teacher_at"])] == [31, 31]
    # student: `question <b>`, 2 thoughts, `</b> #### answer`, aligned columns
    assert batch["input_ids"].tolist() == [
        [1, 2, 3, 90, 91, 91, 92, 30, 31, 20, 0],
        [0, 0, 4, 90, 91, 91, 92, 30, 31, 21, 22],
    ]
    assert batch["labels"][:, 6:].tolist() == [[30, 31, 20, 93, -100], [30, 31, 21, 22, 93]]
    assert (batch["labels"][:, :6] == -100).all()
    assert int(batch["student_at"]) == 8 and (batch["input_ids"][:, 8] == 31).all()
    assert method.tokens(batch) == 10 + 9 + 9 + 5
    assert method.sequence_length(LONG, "codi") == 10
    with_last = make_method("codi", SPECIAL, thoughts=2, teacher_last_step=True)
    assert with_last.collate([LONG], "codi")["teacher_ids"][0].tolist() == [
        1,
        2,
        3,
        10,
        11,
        12,
        13,
        14,
        30,
        31,
        20,
    ]


def test_settings_stage_and_answer_text():
    method = make_method("codi", SPECIAL)
    assert method.stages == ("codi",) and method.settings("codi") == "baseline"
    assert method.config.thoughts == 6 and method.config.distill_div_std and method.config.projection
    assert method.answer_text("#### 42") == "42" and method.answer_text("42") == ""
    assert method.prompt((1, 2)) == [1, 2, 90] and method.prompt_length((1, 2)) == 3 + 6 + 1
    assert method.answer_budget([LONG, SHORT]) == 5
    with pytest.raises(ValueError, match="merges"):
        answer_tail(Example(question=(1,), steps=((5,),), answer=(9,), cot=(6, *SEP, 9)))
    with pytest.raises(ValueError):
        method.settings("stage1")


def embed(model, ids):
    return model.get_input_embeddings()(torch.tensor(ids))


def reference_terms(model, method, examples):
    """CODI's losses from their definition, one example at a time, without cache or padding:
    mean token CE of the teacher and of the student over the batch, and the distance of the
    states before the answer at every hidden state, over the batch, divided by the teacher's std."""
    eos, proj = method.special.eos, method.projection(model)
    t_nll = s_nll = 0.0
    t_count = s_count = 0
    t_states, s_states = [], []
    for ex in examples:
        text, end = method.teacher(ex)
        out = model(input_ids=torch.tensor([[*ex.question, *text]]), output_hidden_states=True)
        q = len(ex.question)
        targets = torch.tensor([*text, eos])
        t_nll = t_nll + torch.nn.functional.cross_entropy(out.logits[0, q - 1 :], targets, reduction="sum")
        t_count += len(targets)
        t_states.append([h[0, q + end] for h in out.hidden_states])
        embeds = embed(model, method.prompt(ex.question))
        for _ in range(method.config.thoughts):
            h = model(inputs_embeds=embeds[None], output_hidden_states=True).hidden_states[-1][0, -1]
            embeds = torch.cat([embeds, proj(h)[None]])
        tail, separator = answer_tail(ex)
        start = len(embeds)  # the `</b>` position predicts the first tail token
        embeds = torch.cat([embeds, embed(model, [method.special.close, *tail])])
        out = model(inputs_embeds=embeds[None], output_hidden_states=True)
        targets = torch.tensor([*tail, eos])
        s_nll = s_nll + torch.nn.functional.cross_entropy(out.logits[0, start:], targets, reduction="sum")
        s_count += len(targets)
        s_states.append([h[0, start + separator] for h in out.hidden_states])
    distances = []
    for layer in range(len(t_states[0])):
        teacher = torch.stack([s[layer] for s in t_states]).detach()
        student = torch.stack([s[layer] for s in s_states])
        distances.append(torch.nn.functional.smooth_l1_loss(student, teacher) / teacher.std())
    return {"teacher": t_nll / t_count, "student": s_nll / s_count, "distill": torch.stack(distances).mean()}


def codi_model(arch, seed=3):
    tok = tiny_tokenizer()
    model = tiny_model(arch, tok, seed=seed)
    method = make_method("codi", special_ids(tok), thoughts=3, projection_dim=48)
    torch.manual_seed(seed)
    method.attach(model)
    return tok, model, method


@pytest.mark.parametrize("arch", list(ARCHS))
def test_each_loss_term_and_its_gradients_equal_the_per_example_definition(arch):
    tok, model, method = codi_model(arch)
    examples = [encode(r, tok) for r in RECORDS]
    assert len({len(ex.question) for ex in examples}) > 1, "questions of different lengths need padding"
    terms = method.loss_terms(model, method.collate(examples, "codi"))
    ref = reference_terms(model, method, examples)
    params = [p for p in model.parameters() if p.requires_grad]
    assert any(PROJECTION in n for n, _ in model.named_parameters())
    for name in ("teacher", "student", "distill"):
        torch.testing.assert_close(terms[name], ref[name], atol=TOL, rtol=0)
        assert terms[name] > 0
        grads = torch.autograd.grad(terms[name], params, retain_graph=True, allow_unused=True)
        ref_grads = torch.autograd.grad(ref[name], params, retain_graph=True, allow_unused=True)
        for g, r in zip(grads, ref_grads):
            assert (g is None) == (r is None)
            if g is not None:
                torch.testing.assert_close(g, r, atol=TOL, rtol=1e-4)
    total = method.loss(model, method.collate(examples, "codi"))
    torch.testing.assert_close(total, ref["student"] + ref["distill"] + ref["teacher"], atol=TOL, rtol=0)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_batched_generate_equals_unbatched(arch):
    tok, model, method = codi_model(arch, seed=5)
    questions = [encode(r, tok).question for r in RECORDS]
    batched = method.generate(model, questions, max_new_tokens=6)
    single = [method.generate(model, [q], max_new_tokens=6) for q in questions]
    assert batched.ids == [g.ids[0] for g in single]
    exact = method.generate(model, questions[:1], max_new_tokens=4, ignore_eos=True)
    assert exact.forward_passes == 1 + 2 + 1 + 3  # prefill, 2 thoughts, thought 3 + `</b>`, 3 decode steps


def test_tiny_run_trains_saves_the_projection_apart_and_reloads(tmp_path):
    from safetensors.torch import load_file

    train = write_jsonl(tmp_path / "train.jsonl", [r.to_dict() for r in generate_chain(24, 0, ops=2)])
    test = write_jsonl(tmp_path / "test.jsonl", [r.to_dict() for r in generate_chain(6, 1, ops=2)])
    cfg = config_from_dict(
        {
            "model": {
                "scratch": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2},
                "vocab_size": 48,
                "max_length": 64,
            },
            "data": {"train": str(train), "eval": str(test)},
            "method": {"name": "codi", "thoughts": 2},
            "trainer": {
                "batch_size": 8,
                "log_every": 1,
                "report_to": [],
                "baseline": {"steps": 3, "lr": 1e-3},
            },
        }
    )
    result = run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    assert 0 <= result["accuracy"] <= 1
    model_dir = tmp_path / "run" / "model"
    saved = load_file(str(model_dir / f"{PROJECTION}.safetensors"))
    assert set(saved) == {"1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias"}
    assert not any(PROJECTION in k for k in load_file(str(model_dir / "model.safetensors")))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows if "loss" in r] == ["codi"] * 3
    run = load_run(tmp_path / "run", device="cpu")
    assert isinstance(run.method, CODI)
    restored = getattr(run.model, PROJECTION).state_dict()
    assert all(torch.equal(restored[k], saved[k]) for k in saved)
    out = evaluate(run, generate_chain(4, 2, ops=2))
    assert 0 <= out["accuracy"] <= 1 and len(out["predictions"]) == 4
    (model_dir / f"{PROJECTION}.safetensors").unlink()
    with pytest.raises(RimInputError, match=f"{PROJECTION}.safetensors is missing"):
        load_run(tmp_path / "run", device="cpu")


def test_the_projection_trains_in_float32_on_a_bfloat16_base():
    tok = tiny_tokenizer()
    model = tiny_model("llama", tok, seed=6).to(torch.bfloat16)
    method = make_method("codi", special_ids(tok), thoughts=2)
    method.attach(model)
    method.attach(model)  # idempotent: the projection is built once
    assert {p.dtype for n, p in model.named_parameters() if PROJECTION in n} == {torch.float32}
    assert sum(PROJECTION in n for n, _ in model.named_children()) == 1
    examples = [encode(r, tok) for r in RECORDS]
    loss = method.loss(model, method.collate(examples, "codi"))
    loss.backward()
    assert torch.isfinite(loss) and getattr(model, PROJECTION)[1].weight.grad is not None
    assert len(method.generate(model, [examples[0].question], max_new_tokens=3).ids) == 1


def test_the_teacher_joins_multiplication_steps_as_the_files_do():
    """The teacher's chain of a multiplication keeps the ` + ` between partial products and has
    none before ` #### answer` (its last step left out)."""
    record = multiplication_record(2365, 4347)
    tok = scratch_tokenizer([record.question, *record.steps, record.answer, "+ ####"], vocab_size=80)
    ex = encode(record, tok)
    text, before_answer = make_method("codi", SPECIAL).teacher(ex)
    assert decode_text(tok, list(text)) == " + ".join(record.steps[:-1]) + f" #### {record.answer}"
    assert text[before_answer + 1 :] == ex.answer  # the separator's last token precedes the answer
    full, _ = make_method("codi", SPECIAL, teacher_last_step=True).teacher(ex)
    assert decode_text(tok, list(full)) == " + ".join(record.steps) + f" #### {record.answer}"
