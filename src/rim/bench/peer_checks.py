"""The fidelity checks of `rim bench peers`: loss, logits and gradients at every curriculum stage
(`equality`), greedy answers (`generation`), and the peer's data loaders against rim's readers
(`loaders`)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedModel

from rim.bench import report
from rim.bench.peer_batch import peer_rows, rim_coconut, stages
from rim.bench.peer_process import PeerProcess
from rim.bench.settings import PeersSettings
from rim.common.errors import RimRunError
from rim.core.encoding import Example
from rim.core.segments import IGNORE, SpecialIds
from rim.methods import Method

if TYPE_CHECKING:
    from rich.console import Console

TOLERANCE = 1e-5
"""Largest difference of loss, logits and gradients counted as equal (fp32), relative to the
largest magnitude of each (loss, any logit, any gradient entry) where that is above 1."""


def rim_forward(
    model: PreTrainedModel, method: Method, examples: list[Example], stage: str
) -> dict[str, Any]:
    """rim's loss, the logits at its supervised positions (row-major, as the LM head computed
    them), their labels, and every parameter's gradient, in eval mode."""
    batch = method.collate(examples, stage, 0.0)
    heads: list[torch.Tensor] = []
    hook = model.get_output_embeddings().register_forward_hook(lambda _m, _i, output: heads.append(output))
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        loss = method.loss(model, batch)
        loss.backward()
    finally:
        hook.remove()
    start = int(batch["prefix_len"]) + int(batch["thoughts"])
    labels = batch["labels"][:, start:]
    keep = labels != IGNORE
    last = heads[-1]  # the last pass: the last thought (never supervised), `</b>` and the text
    logits = last if last.dim() == 2 else last[batch["labels"][:, -last.shape[1] :] != IGNORE]
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return {"loss": loss.detach(), "logits": logits.detach(), "labels": labels[keep], "grads": grads}


def equality(
    peer: PeerProcess,
    model: PreTrainedModel,
    special: SpecialIds,
    examples: list[Example],
    s: PeersSettings,
    tmp: Path,
    console: Console | None,
) -> list[dict[str, Any]]:
    """One row per (c, stage): the largest differences of loss, logits and gradients."""
    rows = []
    for c in s.thoughts_per_step:
        method = rim_coconut(special, s, c)
        for stage, scheduled in stages(s):
            path = tmp / f"peer-{c}-{scheduled}.pt"
            reply = peer.call(
                "forward",
                examples=peer_rows(examples, special),
                stage=scheduled,
                c=c,
                max_latent_stage=s.latent_stages,
                pad_latent_to_max=True,
                out=str(path),
            )
            theirs = torch.load(path, weights_only=True)
            ours = rim_forward(model, method, examples, stage)
            same_labels = torch.equal(theirs["labels"], ours["labels"])
            row = {
                "c": c,
                "stage": stage,
                "peer_stage": scheduled,
                "supervised": int(ours["labels"].numel()),
                "peer_batch": reply["shape"],
                "labels_equal": same_labels,
                "loss_rim": float(ours["loss"]),
                "loss_peer": float(theirs["loss"]),
                "loss_diff": abs(float(ours["loss"]) - float(theirs["loss"])),
                "logits_diff": _max_diff(ours["logits"], theirs["logits"]) if same_labels else None,
                "logits_max": float(ours["logits"].abs().max()) if ours["logits"].numel() else 0.0,
                "grad_diff": _grad_diff(ours["grads"], theirs["grads"]),
                "grad_max": max((float(g.abs().max()) for g in ours["grads"].values()), default=0.0),
            }
            row["equal"] = bool(
                same_labels
                and row["loss_diff"] <= TOLERANCE * max(1.0, row["loss_rim"])
                and row["logits_diff"] is not None
                and row["logits_diff"] <= TOLERANCE * max(1.0, row["logits_max"])
                and row["grad_diff"] <= TOLERANCE * max(1.0, row["grad_max"])
            )
            rows.append(row)
            report.say(
                console,
                f"equality c={c} {stage}: |loss diff| {row['loss_diff']:.1e}, "
                f"logits {row['logits_diff']}, grads {row['grad_diff']:.1e}",
            )
    return rows


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float | None:
    if a.shape != b.shape:
        return None
    return float((a.float() - b.float()).abs().max()) if a.numel() else 0.0


def _grad_diff(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> float:
    """The largest absolute gradient difference over every parameter both have (inf if the
    parameter sets differ)."""
    if set(ours) != set(theirs) or any(ours[n].shape != theirs[n].shape for n in ours):
        return float("inf")
    return max((float((ours[n] - theirs[n]).abs().max()) for n in ours), default=0.0)


def _until_eos(ids: Sequence[int], eos: int) -> list[int]:
    ids = list(ids)
    return ids[: ids.index(eos)] if eos in ids else ids


def generation(
    peer: PeerProcess,
    model: PreTrainedModel,
    special: SpecialIds,
    questions: list[tuple[int, ...]],
    s: PeersSettings,
) -> dict[str, Any]:
    """Greedy answers of the peer (batch 1) and of rim (batch 1 and all questions at once) after
    c x latent_stages thoughts, compared up to EOS."""
    method = rim_coconut(special, s, s.speed_c)
    model.eval()
    theirs = official_answers(peer, questions, s)
    # rim's rows end before EOS; the official ones keep a first token even if it is EOS
    single = [method.generate(model, [q], s.max_new_tokens).ids[0] for q in questions]
    batched = method.generate(model, questions, s.max_new_tokens).ids
    peer_ids = [_until_eos(a, special.eos) for a in theirs["answers"]]
    return {
        "questions": len(questions),
        "thoughts": s.speed_c * s.latent_stages,
        "distinct_answers": len({tuple(a) for a in peer_ids}),
        "same_batch1": sum(a == b for a, b in zip(peer_ids, single, strict=True)),
        "same_batched": sum(a == b for a, b in zip(peer_ids, batched, strict=True)),
        "first_difference": next(
            (
                {"question": i, "peer": a, "rim": b}
                for i, (a, b) in enumerate(zip(peer_ids, single, strict=True))
                if a != b
            ),
            None,
        ),
    }


def official_answers(
    peer: PeerProcess, questions: list[tuple[int, ...]], s: PeersSettings, ignore_eos: bool = False
) -> dict[str, Any]:
    """The official `generate` on `questions` after speed_c x latent_stages thoughts: its
    answers and per-question seconds (`ignore_eos`: every answer `max_new_tokens` long)."""
    return peer.call(
        "generate",
        questions=[list(q) for q in questions],
        c=s.speed_c,
        latent_stages=s.latent_stages,
        max_new_tokens=s.max_new_tokens,
        ignore_eos=ignore_eos,
    )


def loaders(peer: PeerProcess, s: PeersSettings, checkout: Path, tmp: Path) -> list[dict[str, Any]]:
    """Per data file: the peer's `get_dataset` (iCoT text first converted by the checkout's
    preprocessing/gsm_icot.py) against rim's `read_records`, compared as text."""
    if not s.data or s.tokenizer is None:  # PeersSettings refuses `loaders` without them
        return []
    from transformers import AutoTokenizer

    from rim.data.readers import read_records

    tok = AutoTokenizer.from_pretrained(s.tokenizer)
    rows = []
    for path in map(Path, s.data):
        source = _as_coconut_json(path, s, checkout, tmp)
        theirs = peer.call("load_data", path=str(source), tokenizer=s.tokenizer)
        ours = read_records(path)

        def text(ids: list[int]) -> str:
            return str(tok.decode(ids)).strip()

        peer_records = [
            (text(q), [text(x) for x in st], text(a[:-1]).removeprefix("###").strip())
            for q, st, a in zip(theirs["questions"], theirs["steps"], theirs["answers"], strict=True)
        ]
        rim_records = [(r.question.strip(), [x.strip() for x in r.steps], r.answer.strip()) for r in ours]
        differ = [i for i, (a, b) in enumerate(zip(peer_records, rim_records, strict=False)) if a != b]
        # an empty CoT: the official loader keeps one empty step (tokenised as a bare newline),
        # rim's reader none (an intended difference, docs/method.md)
        empty = [
            i
            for i in differ
            if peer_records[i][1] == [""]
            and rim_records[i][1] == []
            and _same_ends(peer_records[i], rim_records[i])
        ]
        other = [i for i in differ if i not in empty]
        rows.append(
            {
                "file": path.name,
                "peer_examples": len(peer_records),
                "rim_examples": len(rim_records),
                "same": len(peer_records) - len(differ) if len(peer_records) == len(rim_records) else None,
                "empty_cot": len(empty),
                "other_differences": len(other),
                "first_difference": None
                if not other
                else {"index": other[0], "peer": peer_records[other[0]], "rim": rim_records[other[0]]},
            }
        )
    return rows


def _same_ends(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and a[2] == b[2]


def _as_coconut_json(path: Path, s: PeersSettings, checkout: Path, tmp: Path) -> Path:
    """`path` itself if JSON; an iCoT text file converted by the checkout's own script."""
    if path.suffix != ".txt":
        return path
    work = Path(tempfile.mkdtemp(prefix=f"convert-{path.stem}-", dir=tmp))
    (work / "data").mkdir()
    (work / "data" / "gsm_split.txt").write_bytes(path.read_bytes())
    done = subprocess.run(
        [s.python or sys.executable, str(checkout / "preprocessing" / "gsm_icot.py"), "split"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RimRunError(f"the checkout's preprocessing/gsm_icot.py failed on {path}:\n{done.stderr}")
    return work / "data" / "gsm_split.json"
