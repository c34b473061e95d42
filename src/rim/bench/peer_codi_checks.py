"""The CODI check of `rim bench peers`: the official CODI (built by its `train.py`, recorded by
`peer_codi.py`) and rim's CODI on the same weights (the official model's, projection and new
token rows included) and the same token ids, in fp32, eval mode: the loss, each of its three
terms (student CE, distillation, teacher CE) and every parameter's gradient, for each example
alone and for the examples whose questions share the most common length in one batch.

rim is given the official token ids: the official text (`question`, the chain without its last
step, `The answer is: N`) differs from rim's (` #### N`), so rim's `Example` is built from the
official sequences, with `The answer is:` as the separator before the answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from rim.bench import report
from rim.bench.peer_batch import gpt2_config
from rim.bench.peer_process import PeerProcess
from rim.bench.settings import PeersSettings
from rim.core.encoding import Example
from rim.core.segments import SpecialIds
from rim.data.readers import read_records
from rim.methods import make_method
from rim.methods.codi import CODI, PROJECTION

if TYPE_CHECKING:
    from rich.console import Console

TOLERANCE = 1e-5
"""Largest difference counted as equal (fp32), relative to the largest magnitude above 1."""

OFFICIAL_DEFAULTS: dict[str, Any] = {
    "num_latent": 5,
    "use_prj": False,
    "prj_dim": 2048,
    "prj_dropout": 0.0,
    "prj_no_ln": False,
    "distill_loss_type": "smooth_l1",
    "distill_loss_factor": 1.0,
    "distill_loss_div_std": False,
    "ref_loss_factor": 1.0,
}
"""The official `TrainingArguments` defaults of the options rim's CODI maps."""

PROJECTION_NAMES = {"prj.1.": "1.", "prj.3.": "3.", "prj.ln.": "4."}
"""The official projection's parameter names (`prj`: dropout, linear, GELU, linear, `ln`) to rim's."""


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def codi_method(special: SpecialIds, args: dict[str, Any]) -> CODI:
    """rim's CODI with the official options (train.py's command-line names)."""
    a = {**OFFICIAL_DEFAULTS, **args}
    method = make_method(
        "codi",
        special,
        thoughts=int(a["num_latent"]),
        projection=_flag(a["use_prj"]),
        projection_dim=int(a["prj_dim"]),
        projection_dropout=float(a["prj_dropout"]),
        projection_norm=not _flag(a["prj_no_ln"]),
        distill_loss=str(a["distill_loss_type"]),
        distill_factor=float(a["distill_loss_factor"]),
        distill_div_std=_flag(a["distill_loss_div_std"]),
        teacher_factor=float(a["ref_loss_factor"]),
        teacher_last_step=_flag(a.get("include_last_cot", False)),
    )
    assert isinstance(method, CODI)
    return method


def official_example(row: dict[str, Any], eos: int, filler: int) -> Example:
    """rim's `Example` of one official row: the question (the encoder ids without `<bot>`), the
    official chain as one step and a `filler` step standing for the last one it left out, and
    ` The answer is: N` as the chain's tail (`N` its answer)."""
    question = row["encoder"][:-1]
    said = row["decoder"][1:-1]  # `The answer is: N` without `<eot>` and EOS
    separator = row["model_answer_position"] - 1
    chain = row["ref"][len(question) : len(row["ref"]) - len(said) - 1]
    steps = ((*chain,), (filler,)) if chain else ((filler,),)
    return Example(tuple(question), steps, tuple(said[separator:]), (*chain, filler, *said))


@dataclass
class OfficialCODI:
    """What the official `train()` built, in rim's terms: its versions, rim's CODI with its
    options, a GPT-2 with its weights, and its examples."""

    args: dict[str, Any]
    versions: dict[str, str]
    method: CODI
    model: PreTrainedModel
    examples: list[Example]


def build_codi(
    peer: PeerProcess,
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    settings: PeersSettings,
    checkout: Path,
    tmp: Path,
) -> OfficialCODI:
    """Run the official `train()` on `train_file`'s first lines (the peer keeps its model and
    batches) and take its weights and examples into rim's form."""
    assert settings.train_file is not None  # the settings' validator
    records = read_records(settings.train_file)[: settings.codi_examples]
    rows = [{"question": r.question, "cot": " ".join(r.steps), "answer": r.answer} for r in records]
    args = {"data_name": "icot", "report_to": "none", "per_device_train_batch_size": 1}
    args.update(settings.official_args)
    weights, state = tmp / "codi-weights.pt", tmp / "codi-state.pt"
    torch.save(model.state_dict(), weights)
    reply = peer.call(
        "setup",
        checkout=str(checkout),
        config=gpt2_config(model),
        weights=str(weights),
        tokenizer=settings.tokenizer,
        rows=rows,
        args=args,
        state=str(state),
        threads=settings.threads,
    )
    ids = reply["special"]
    eos = int(tok.eos_token_id)
    special = SpecialIds(open=ids["bot"], memory=ids["pad"], close=ids["eot"], eos=eos, pad=ids["pad"])
    method = codi_method(special, args)
    ours = _official_weights(model, method, torch.load(state, weights_only=True))
    examples = [official_example(row, eos, eos) for row in reply["examples"]]
    return OfficialCODI(args, reply["versions"], method, ours, examples)


def run_codi(
    peer: PeerProcess, official: OfficialCODI, settings: PeersSettings, tmp: Path, console: Console | None
) -> dict[str, Any]:
    """Compare rim's CODI with the official one built by `build_codi` (module docstring)."""
    examples = official.examples
    lengths = Counter(len(ex.question) for ex in examples)
    length, count = lengths.most_common(1)[0]
    groups = [[i] for i in range(len(examples))]
    if count > 1:
        groups.append([i for i, ex in enumerate(examples) if len(ex.question) == length])
    cases = []
    for group in groups:
        theirs = peer.call("forward", indices=group, out=str(tmp / "codi-grads.pt"))
        their_grads = torch.load(tmp / "codi-grads.pt", weights_only=True)
        rows = [examples[i] for i in group]
        cases.append(_compare(official.model, official.method, rows, theirs, their_grads, group))
    result = {
        "file": settings.train_file,
        "args": official.args,
        "examples": len(examples),
        "cases": cases,
        "equal": all(c["equal"] for c in cases),
    }
    worst = max(cases, key=lambda c: c["loss_diff"])
    report.say(
        console,
        f"codi: {len(cases)} cases, equal {sum(c['equal'] for c in cases)}; largest loss diff "
        f"{worst['loss_diff']:.1e} (rows {worst['rows']})",
    )
    return result


def _official_weights(
    model: PreTrainedModel, method: CODI, state: dict[str, torch.Tensor]
) -> PreTrainedModel:
    """A GPT-2 like `model` with the official CODI's weights: its base (three new rows) and
    its projection under rim's name."""
    config = GPT2Config.from_dict(
        {**model.config.to_dict(), "vocab_size": state["codi.transformer.wte.weight"].shape[0]}
    )
    ours = GPT2LMHeadModel(config).float()
    base = {k.removeprefix("codi."): v for k, v in state.items() if k.startswith("codi.")}
    base.setdefault("lm_head.weight", base["transformer.wte.weight"])
    ours.load_state_dict(base, strict=True)
    method.attach(ours)
    if method.config.projection:
        projection = {}
        for key, value in state.items():
            for theirs, mine in PROJECTION_NAMES.items():
                if key.startswith(theirs):
                    projection[mine + key.removeprefix(theirs)] = value
        getattr(ours, PROJECTION).load_state_dict(projection, strict=True)
    return ours


def _compare(
    model: PreTrainedModel,
    method: CODI,
    examples: list[Example],
    theirs: dict[str, float],
    their_grads: dict[str, torch.Tensor],
    rows: list[int],
) -> dict[str, Any]:
    """rim's loss, terms and gradients on `examples` against the official ones."""
    model.eval()
    model.zero_grad(set_to_none=True)
    batch = method.collate(examples, "codi")
    terms = method.weighted(method.loss_terms(model, batch))  # the official reports them weighted
    loss = terms["student"] + terms["distill"] + terms["teacher"]
    loss.backward()
    ours = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
    names = {n.removeprefix("codi."): n for n in their_grads}
    grad_diff = grad_max = 0.0
    missing = []
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        key = name
        if name.startswith(PROJECTION + "."):
            rest = name.removeprefix(PROJECTION + ".")
            key = next(
                (t + rest.removeprefix(m) for t, m in PROJECTION_NAMES.items() if rest.startswith(m)), name
            )
        official = their_grads.get(names.get(key, key))
        if official is None:
            missing.append(name)
            continue
        grad_diff = max(grad_diff, float((param.grad - official).abs().max()))
        grad_max = max(grad_max, float(param.grad.abs().max()))
    model.zero_grad(set_to_none=True)
    diffs = {k: abs(ours[k] - theirs[k]) for k in ours}
    equal = all(diffs[k] <= TOLERANCE * max(1.0, abs(ours[k])) for k in ours)
    equal = equal and not missing and grad_diff <= TOLERANCE * max(1.0, grad_max)
    return {
        "rows": rows,
        **{f"{k}_rim": v for k, v in ours.items()},
        **{f"{k}_peer": v for k, v in theirs.items()},
        **{f"{k}_diff": v for k, v in diffs.items()},
        "grad_diff": grad_diff,
        "grad_max": grad_max,
        "missing_grads": missing,
        "equal": equal,
    }
