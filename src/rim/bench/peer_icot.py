"""The peer side of `rim bench peers` for iCoT-SI: a script run by the peer's own Python, beside a
checkout of the official code (da03/Internalize_CoT_Step_by_Step), that drives that code and
nothing else (standard library, torch, transformers and the checkout's `src/` modules; never
rim). The request loop is `peer_serve.py`'s (JSON lines; tensors travel through files).

The official removal schedule, smoothing draws and optimizer resets live inline in
`src/train.py`'s `main()`, so the script runs that `main()` unmodified and records what it does
through the functions it calls:

- `get_sep_position` (the first call of a step sees the batch before removal),
- `torch.multinomial` (the smoothing offsets drawn for the batch),
- `ImplicitModel.compute_loss` (the ids and labels after removal, and the loss),
- `torch.optim.AdamW` (a construction after the first is a reset, at the step it happens),
- `torch.nn.utils.clip_grad_norm_` (every parameter's gradient at the steps asked for).

Only `evaluate` (greedy decoding of the validation file after each epoch) and the checkpoint
save are replaced by no-ops: neither changes the training steps.

Requests (`cmd`):
- `setup`: import the checkout's `src/` modules; save a GPT-2 built from `config` with the
  weights at `weights`, beside the tokenizer files of `tokenizer`, as the model folder
  `ImplicitModel` loads (`--model`).
- `run`: `train.main()` with `args` (its command-line options; `--model`, `--save_model` and
  `--val_path` are filled in); per step the ids before removal, the offsets, the ids and labels
  after removal and the loss; the training file's rows as the official `CoTDataset` tokenises
  them; the reset steps (the step index a new AdamW is built before); the official
  `compute_lambda_distribution`; gradients at `grad_steps` saved to `out`.
- `time`: `train.main()` with `args` and nothing recorded but the end of every AdamW step (the
  seconds between them: the official loop's own steps, for the speed check).
- `quit`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import sys
import tempfile
import time

import torch

STATE: dict = {}


def setup(req: dict) -> dict:
    """Import the checkout's modules and write the model folder `ImplicitModel` will load."""
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    sys.path.insert(0, os.path.join(req["checkout"], "src"))
    torch.set_num_threads(req.get("threads") or torch.get_num_threads())
    STATE["train"] = importlib.import_module("train")
    folder = tempfile.mkdtemp(prefix="peer-icot-model-")
    model = GPT2LMHeadModel(GPT2Config(**req["config"]))
    model.load_state_dict(torch.load(req["weights"], weights_only=True), strict=True)
    model.save_pretrained(folder)
    for name in os.listdir(req["tokenizer"]):
        shutil.copy(os.path.join(req["tokenizer"], name), folder)
    STATE["folder"] = folder
    versions = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    return {"versions": versions}


def run(req: dict) -> dict:
    """One official training run, recorded (see the module docstring)."""
    train = STATE["train"]
    steps: list[dict] = []
    resets: list[int] = []
    grads: dict[int, dict[str, torch.Tensor]] = {}
    record: dict = {"model": None, "loader": None}

    original = {
        "get_sep_position": train.get_sep_position,
        "multinomial": torch.multinomial,
        "compute_loss": train.ImplicitModel.compute_loss,
        "clip": torch.nn.utils.clip_grad_norm_,
    }

    def get_sep_position(input_ids, sep_id, skip=0):
        if skip == 0 and len(steps) == record.get("seen", 0):  # the step's first call: before removal
            steps.append({"before": _rows(input_ids, sep_id), "offsets": None})
        return original["get_sep_position"](input_ids, sep_id, skip)

    def multinomial(*args, **kwargs):
        drawn = original["multinomial"](*args, **kwargs)
        if steps and steps[-1]["offsets"] is None:
            steps[-1]["offsets"] = drawn.tolist()
        return drawn

    def compute_loss(self, input_ids, labels, position_ids=None, output_attentions=False):
        record["model"] = self
        outputs = original["compute_loss"](self, input_ids, labels, position_ids, output_attentions)
        steps[-1].update(after=input_ids.tolist(), labels=labels.tolist(), loss=float(outputs.loss))
        record["seen"] = len(steps)
        return outputs

    original_adamw = torch.optim.AdamW

    class AdamW(original_adamw):  # type: ignore[valid-type,misc]
        __signature__ = inspect.signature(original_adamw)  # `main` asks it whether `fused` exists
        made = 0

        def __init__(self, *args, **kwargs):
            if AdamW.made:
                resets.append(len(steps))  # before the step's batch is laid out
            AdamW.made += 1
            super().__init__(*args, **kwargs)

    def clip_grad_norm_(params, *args, **kwargs):
        step = len(steps) - 1
        if step in req.get("grad_steps", []):
            grads[step] = {
                n: p.grad.detach().clone()
                for n, p in record["model"].base_model.named_parameters()
                if p.grad is not None
            }
        return original["clip"](params, *args, **kwargs)

    class CoTDataset(train.CoTDataset):  # type: ignore[name-defined]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            record.setdefault("rows", self.examples_all)  # the first one built: the training file

    _main(
        train,
        req["args"],
        [
            (train, "get_sep_position", get_sep_position),
            (train, "CoTDataset", CoTDataset),
            (torch, "multinomial", multinomial),
            (train.ImplicitModel, "compute_loss", compute_loss),
            (torch.optim, "AdamW", AdamW),
            (torch.nn.utils, "clip_grad_norm_", clip_grad_norm_),
        ],
    )
    lam = float(req["args"].get("removal_smoothing_lambda", "inf"))
    torch.save(grads, req["out"])
    return {
        "rows": [list(row) for row in record["rows"]],
        "steps": [s for s in steps if "after" in s],
        "resets": resets,
        "distribution": train.compute_lambda_distribution(lam).tolist(),
    }


def time_run(req: dict) -> dict:
    """`train.main()` with `args`, unrecorded: the one addition is a clock read at the end of
    every AdamW step, so the official loop (its batches, removal, forward, backward, clipping
    and optimizer, resets included) runs at its own speed. The seconds between consecutive
    steps' ends."""
    train = STATE["train"]
    stamps: list[float] = []
    original_adamw = torch.optim.AdamW

    class AdamW(original_adamw):  # type: ignore[valid-type,misc]
        __signature__ = inspect.signature(original_adamw)  # `main` asks it whether `fused` exists

        def step(self, *args, **kwargs):
            result = super().step(*args, **kwargs)
            stamps.append(time.perf_counter())
            return result

    _main(train, req["args"], [(torch.optim, "AdamW", AdamW)])
    return {"seconds": [b - a for a, b in zip(stamps, stamps[1:])]}


def _main(train, args: dict, patches: list[tuple[object, str, object]]) -> None:
    """`train.main()` with `args` as its command line (`--model`, `--save_model` and `--val_path`
    filled in), `evaluate` (greedy decoding of a file: no step) and the checkpoint save as no-ops,
    and each (object, attribute, value) of `patches` in place; all restored afterwards."""
    out = tempfile.mkdtemp(prefix="peer-icot-out-")
    argv = ["train.py", "--model", STATE["folder"], "--save_model", out, "--val_path", args["train_path"]]
    for key, value in args.items():
        if isinstance(value, bool):
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", str(value)]
    patches = [
        *patches,
        (train, "evaluate", lambda *a, **k: (0.0, 0.0, 1.0)),
        (train.ImplicitModel, "save_pretrained", lambda self, path: None),
    ]
    applied: list[tuple[object, str, object]] = []  # (owner, name, what it held: own value or _ABSENT)
    saved_argv = sys.argv
    sys.argv = argv
    try:
        for owner, name, value in patches:
            before = owner.__dict__.get(name, _ABSENT)  # _ABSENT: inherited, or not there
            setattr(owner, name, value)
            applied.append((owner, name, before))
        train.main()
    finally:
        for owner, name, before in reversed(applied):
            if before is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, before)
        sys.argv = saved_argv
        shutil.rmtree(out, ignore_errors=True)


_ABSENT = object()


def _rows(input_ids: torch.Tensor, eos: int) -> list[list[int]]:
    """The batch's rows without the EOS padding after their third EOS (the collator pads with EOS)."""
    rows = []
    for row in input_ids.tolist():
        seen = 0
        for i, token in enumerate(row):
            seen += token == eos
            if seen == 3:
                rows.append(row[: i + 1])
                break
        else:
            rows.append(row)
    return rows


COMMANDS = {"setup": setup, "run": run, "time": time_run}

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_serve import serve  # beside this script; the peer's Python has no rim

    serve(COMMANDS)
