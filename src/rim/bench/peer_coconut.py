"""The peer side of `rim bench peers` for Coconut: a script run by the peer's own Python, beside a
checkout of the official code (facebookresearch/coconut), that drives that code and nothing else.

It imports only the standard library, torch, transformers and the checkout's own modules
(`coconut.py`, `dataset.py`), never rim: the official code pins transformers 4.46.2 (its legacy
tuple KV caches are gone from transformers 5), so it usually runs in a virtual environment of its
own. rim's side (`rim.bench.peer_process`) starts it as a subprocess and talks to it in JSON
lines: one request per line on stdin, one reply per line on the original stdout (the peer's own
prints go to stderr). Tensors travel through files (`torch.save`).

Requests (`cmd`):
- `setup`: build a GPT-2 from `config` (GPT2Config keyword arguments) with the weights saved at
  `weights`, and wrap it in the checkout's `Coconut` with the `special` token ids.
- `forward`: the checkout's `get_cot_latent_dataset` and `MyCollator` lay out `examples` (token
  ids: question, steps, answer) at `stage`; one forward in eval mode, then one backward; saves
  the loss, the logits at every supervised position (row-major), their labels and every
  parameter's gradient to `out`.
- `generate`: the checkout's `Coconut.generate` (batch 1, greedy) for each question, its prompt
  laid out by the checkout's `get_question_latent_dataset` (c x latent_stages latent tokens);
  the new tokens, and per question the seconds to the first answer token (stamped when the
  official forward over prompt and thoughts returns, before its argmax) and in all
  (`ignore_eos`: the model's EOS id is set to -1 so that every answer runs to `max_new_tokens`,
  for timing).
- `train`: `steps` optimizer steps as the checkout's `run.py` takes them (collate, forward,
  loss.backward, AdamW step, zero_grad) over `batches` in turn; the seconds of each.
- `load_data`: the checkout's `get_dataset` on a Coconut JSON file with a tokenizer folder; the
  token ids it produces.
- `quit`.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from types import SimpleNamespace

import torch

STATE: dict = {}


def setup(req: dict) -> dict:
    """Import the checkout, build the model and the padding tokenizer the collator needs."""
    import datasets
    import transformers
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    datasets.logging.set_verbosity_error()  # not its notes on num_proc for an 8-row batch
    sys.path.insert(0, req["checkout"])
    torch.set_num_threads(req.get("threads") or torch.get_num_threads())
    coconut, dataset = importlib.import_module("coconut"), importlib.import_module("dataset")
    special = req["special"]
    torch.manual_seed(0)
    config = GPT2Config(**req["config"])
    base = GPT2LMHeadModel(config)
    base.load_state_dict(torch.load(req["weights"], weights_only=True), strict=True)
    model = coconut.Coconut(base, special["latent"], special["start"], special["end"], special["eos"])
    # the collator only pads: a tokenizer that knows the pad token is all it reads
    vocab = {"<pad>": special["pad"]}
    pad_tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<pad>")))
    pad_tok.pad_token, pad_tok.padding_side = "<pad>", "right"
    STATE.update(model=model, dataset=dataset, special=special, pad_tok=pad_tok, optimizer=None)
    STATE["collator"] = dataset.MyCollator(pad_tok, latent_id=special["latent"], label_pad_token_id=-100)
    return {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "attention": getattr(base.config, "_attn_implementation", None),
    }


def _features(req: dict) -> list[dict]:
    """The checkout's `get_cot_latent_dataset` rows for `examples` at `stage`."""
    from datasets import Dataset

    rows = req["examples"]
    base = Dataset.from_dict(
        {
            "question_tokenized": [r["question"] for r in rows],
            "steps_tokenized": [r["steps"] for r in rows],
            "answer_tokenized": [r["answer"] for r in rows],
            "idx": list(range(len(rows))),
        }
    )
    configs = SimpleNamespace(
        uniform_prob=0.0,
        max_latent_stage=req["max_latent_stage"],
        pad_latent_to_max=req.get("pad_latent_to_max", True),
        c_thought=req["c"],
        no_cot=False,
    )
    special = STATE["special"]
    laid = STATE["dataset"].get_cot_latent_dataset(
        req["stage"], base, configs, special["start"], special["latent"], special["end"]
    )
    return [dict(laid[i]) for i in range(len(laid))]


def _batch(features: list[dict]) -> dict:
    """The collated batch as `run.py` hands it to the model (without `idx`)."""
    batch = STATE["collator"]([dict(f) for f in features])
    return {k: v for k, v in batch.items() if k != "idx"}


def forward(req: dict) -> dict:
    """One forward and backward of the official model on the laid-out batch (eval mode)."""
    model = STATE["model"]
    batch = _batch(_features(req))
    model.eval()  # no dropout: the same function on both sides
    model.base_causallm.zero_grad(set_to_none=True)
    out = model(**batch)
    out.loss.backward()
    keep = batch["labels"][:, 1:] != -100
    params = model.base_causallm.named_parameters()
    grads = {n: p.grad.detach().clone() for n, p in params if p.grad is not None}
    model.base_causallm.zero_grad(set_to_none=True)  # nothing left for a later training step
    torch.save(
        {
            "loss": out.loss.detach(),
            "logits": out.logits[:, :-1][keep].detach(),
            "labels": batch["labels"][:, 1:][keep],
            "grads": grads,
        },
        req["out"],
    )
    return {"loss": float(out.loss.detach()), "shape": list(batch["input_ids"].shape)}


def _prompts(req: dict) -> list[list[int]]:
    """The official inference prompts (`get_question_latent_dataset`): question, start,
    `thoughts_per_step` x `latent_stages` latent tokens, end."""
    from datasets import Dataset

    questions = req["questions"]
    base = Dataset.from_dict(
        {
            "question_tokenized": questions,
            "steps_tokenized": [[] for _ in questions],  # unused: latents padded to the maximum
            "idx": list(range(len(questions))),
        }
    )
    configs = SimpleNamespace(
        pad_latent_to_max=True, max_latent_stage=req["latent_stages"], c_thought=req["c"]
    )
    special = STATE["special"]
    laid = STATE["dataset"].get_question_latent_dataset(
        req["latent_stages"], base, configs, special["start"], special["latent"], special["end"]
    )
    return [list(laid[i]["input_ids"]) for i in range(len(laid))]


def generate(req: dict) -> dict:
    """The official greedy decoding, one question at a time (it supports batch 1 only)."""
    model, special = STATE["model"], STATE["special"]
    model.eval()
    # timing: an EOS id no token has, so that every answer gets max_new_tokens as rim's do
    model.eos_token_id = -1 if req.get("ignore_eos") else special["eos"]
    first: list[float] = []
    plain_forward = model.forward

    def timed_forward(*args, **kwargs):  # `generate` calls it once: the prefill and the thoughts
        result = plain_forward(*args, **kwargs)
        first.append(time.perf_counter())
        return result

    model.forward = timed_forward
    answers, ttft, total = [], [], []
    try:
        with torch.no_grad():
            for prompt in _prompts(req):
                ids = torch.tensor([prompt])
                first.clear()
                start = time.perf_counter()
                tokens = model.generate(ids, torch.ones_like(ids), max_new_tokens=req["max_new_tokens"])
                total.append(time.perf_counter() - start)
                ttft.append(first[0] - start)
                answers.append(tokens[0, ids.shape[1] :].tolist())
    finally:
        del model.forward  # the class's own again
        model.eos_token_id = special["eos"]
    return {"answers": answers, "ttft_s": ttft, "total_s": total}


def train(req: dict) -> dict:
    """`steps` optimizer steps as `run.py` takes them; the seconds and loss of each. The rows are
    laid out (`get_cot_latent_dataset`, once per epoch in `run.py`) before the clock starts;
    each timed step collates, runs forward and backward, and steps AdamW."""
    model = STATE["model"]
    if STATE["optimizer"] is None:
        STATE["optimizer"] = torch.optim.AdamW(
            model.base_causallm.parameters(), lr=req["lr"], weight_decay=req["weight_decay"]
        )
    optimizer = STATE["optimizer"]
    optimizer.zero_grad(set_to_none=True)
    model.train()
    laid = [_features({**req, "examples": rows}) for rows in req["batches"]]
    seconds, losses = [], []
    for step in range(req["steps"]):
        features = laid[step % len(laid)]
        start = time.perf_counter()
        batch = _batch(features)
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    return {"seconds": seconds, "losses": losses}


def load_data(req: dict) -> dict:
    """The official `get_dataset` on a Coconut JSON file: its token ids."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(req["tokenizer"])
    data = STATE["dataset"].get_dataset(req["path"], tok)
    return {
        "questions": list(data["question_tokenized"]),
        "steps": list(data["steps_tokenized"]),
        "answers": list(data["answer_tokenized"]),
    }


COMMANDS = {"setup": setup, "forward": forward, "generate": generate, "train": train, "load_data": load_data}


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_serve import serve  # beside this script; the peer's Python has no rim

    serve(COMMANDS)
