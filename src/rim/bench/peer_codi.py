"""The peer side of `rim bench peers` for CODI: a script run by the peer's own Python, beside a
checkout of the official code (zhenyi4/codi), that drives that code and nothing else (standard
library, torch, transformers and the checkout's `train.py` and `src/model.py`; never rim). The
request loop is `peer_serve.py`'s (JSON lines; tensors travel through files).

The official data preparation (question, chain without its last step, `The answer is: N`, the
answer positions) and the model (`CODI`: GPT-2, three new token rows, the projection) are built
inside `train.py`'s `train()`. The script runs that `train()` unmodified with its command-line
options, with two stand-ins: `load_dataset` returns the rows given (the official one downloads
GSM8k-Aug from the hub), and `CustomTrainer` keeps the model, dataset and collator instead of
training.

Requests (`cmd`):
- `setup`: save a GPT-2 built from `config` with the weights at `weights`, beside the tokenizer
  files of `tokenizer`, in a folder named `tiny-gpt2` (the official code picks the embedding
  attribute by the name), and run `train()` on `rows` (question, cot, answer) with `args`; cast
  the model to fp32; save its state dict to `state`; return the dataset's token ids.
- `forward`: the official collator on the examples `indices`, one forward in eval mode and one
  backward; the loss and its three terms; every parameter's gradient saved to `out`.
- `train`: timed optimizer steps (collator, forward, backward, clipping, AdamW), for the speed
  check; they change the weights, so they come after every `forward`.
- `quit`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import torch

STATE: dict = {}


def setup(req: dict) -> dict:
    """Build the official CODI through `train()` and keep it (see the module docstring)."""
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    sys.path.insert(0, req["checkout"])
    torch.set_num_threads(req.get("threads") or torch.get_num_threads())
    folder = os.path.join(tempfile.mkdtemp(prefix="peer-codi-"), "tiny-gpt2")
    model = GPT2LMHeadModel(GPT2Config(**req["config"]))
    model.load_state_dict(torch.load(req["weights"], weights_only=True), strict=True)
    model.save_pretrained(folder)
    for name in os.listdir(req["tokenizer"]):
        shutil.copy(os.path.join(req["tokenizer"], name), folder)
    os.chdir(req["checkout"])  # `from src.model import ...`
    import train  # the checkout's train.py

    kept: dict = {}

    class Keep:  # stands in for CustomTrainer: keeps what train() built, trains nothing
        def __init__(self, model, tokenizer, args, train_dataset, eval_dataset, data_collator):
            kept.update(model=model, dataset=train_dataset, collator=data_collator)

        def train(self):
            pass

        def save_state(self):
            pass

        def save_model(self, output_dir=None):
            pass

    rows = req["rows"]
    train.load_dataset = lambda name, *args, **kwargs: {"train": rows}
    train.CustomTrainer = Keep
    output = tempfile.mkdtemp(prefix="peer-codi-out-")
    argv = ["train.py", "--output_dir", output, "--model_name_or_path", folder]
    for key, value in req["args"].items():
        argv += [f"--{key}", str(value)]
    sys.argv = argv
    train.train()
    codi = kept["model"].float()
    STATE.update(model=codi, dataset=kept["dataset"], collator=kept["collator"])
    torch.save({k: v.detach().clone() for k, v in codi.state_dict().items()}, req["state"])
    data = kept["dataset"].data_dict
    return {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "special": {"pad": codi.pad_token_id, "bot": codi.bot_id, "eot": codi.eot_id},
        "examples": [
            {
                "encoder": data["encoder_input_ids"][i].tolist(),
                "decoder": data["decoder_input_ids"][i].tolist(),
                "ref": data["ref_input_ids"][i].tolist(),
                "ref_answer_position": int(data["ref_answer_position"][i]),
                "model_answer_position": int(data["model_answer_position"][i]),
            }
            for i in range(len(kept["dataset"]))
        ],
    }


def forward(req: dict) -> dict:
    """The official loss and its terms on the collated examples `indices`; gradients to `out`."""
    model, dataset = STATE["model"], STATE["dataset"]
    batch = STATE["collator"]([dataset[i] for i in req["indices"]])
    model.eval()
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    out["loss"].backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.save(grads, req["out"])
    model.zero_grad(set_to_none=True)
    return {
        "loss": float(out["loss"].detach()),
        "student": float(out["ce_loss"]),
        "distill": float(out["distill_loss"]),
        "teacher": float(out["ref_ce_loss"]),
    }


def train(req: dict) -> dict:
    """`steps` optimizer steps on the examples `batches` (a list of index lists, cycled), as the
    official trainer's inner step takes them: the official collator, forward (train mode),
    backward, gradient clipping to `max_grad_norm`, AdamW (one, built on the first call); the
    seconds and loss of each. It changes the weights: the client asks for `forward` first."""
    model, dataset = STATE["model"], STATE["dataset"]
    if "optimizer" not in STATE:
        STATE["optimizer"] = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=req["lr"], weight_decay=req["weight_decay"]
        )
    optimizer = STATE["optimizer"]
    model.train()
    seconds, losses = [], []
    for step in range(req["steps"]):
        indices = req["batches"][step % len(req["batches"])]
        start = time.perf_counter()
        batch = STATE["collator"]([dataset[i] for i in indices])
        loss = model(**batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), req["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    return {"seconds": seconds, "losses": losses}


COMMANDS = {"setup": setup, "forward": forward, "train": train}

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_serve import serve  # beside this script; the peer's Python has no rim

    serve(COMMANDS)
