"""`rim bench peers`: rim beside a peer's official code, on the same weights, batches and machine.

The peer's code runs unmodified in a subprocess of its own Python (`rim.bench.peer_process`,
`rim.bench.peer_coconut`); both sides get the same randomly initialised GPT-2 (the peer loads
rim's weights strictly) and the same token ids. Four checks, each optional:

- equality: at every curriculum stage (0 .. the last latent stage, and the final all-latent one)
  and each c, the loss, the logits at every supervised position and every parameter's gradient
  of the peer's forward against rim's, in fp32, eval mode;
- generation: greedy answers to the same questions (the peer at batch 1, as it requires; rim at
  batch 1 and batched);
- speed: optimizer steps (collate, forward, backward, AdamW) on the same batches, in rounds that
  alternate peer and rim; time to the first answer token and answers per second, with rim's RiM
  and no-CoT beside (same model, same questions);
- loaders: the peer's dataset code on its own files against rim's readers.

iCoT-SI and CODI have two: equality (`peer_icot_checks`, `peer_codi_checks`) and the training
speed (`peer_text_speed`).

Writes peers.json, peers.md and peers.png under `--out`.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedModel

from rim.bench import report
from rim.bench.common import describe_model, model_config, random_model
from rim.bench.peer_batch import gpt2_config, peer_special, random_examples
from rim.bench.peer_checks import equality, generation, loaders
from rim.bench.peer_codi_checks import build_codi, run_codi
from rim.bench.peer_icot_checks import icot_run, run_icot
from rim.bench.peer_process import PeerProcess, check_checkout
from rim.bench.peer_report import ratios, write
from rim.bench.peer_speed import inference_speed, training_speed
from rim.bench.peer_text_speed import check_timeable, codi_training_speed, icot_training_speed
from rim.bench.settings import PeersSettings
from rim.common.errors import RimInputError
from rim.core.segments import SpecialIds
from rim.models.dropout import set_dropout

if TYPE_CHECKING:
    from rich.console import Console

CHECKOUT_ENV = "RIM_PEER_CHECKOUT"


def run_peers(settings: PeersSettings, out: str | Path, console: Console | None = None) -> dict[str, Any]:
    """Run the checks of `settings` against the peer's checkout; write peers.json/.md/.png."""
    out = Path(out)
    load = report.load_average()
    checkout = check_checkout(settings.peer, _checkout(settings))
    if settings.threads:
        torch.set_num_threads(settings.threads)
    cfg = model_config(settings.model)
    if cfg.name_or_path is not None or cfg.scratch.get("model_type") != "gpt2":
        raise RimInputError(
            "the peers benchmark builds a GPT-2 from scratch (scratch.model_type: gpt2)", source="model"
        )
    bench = random_model(cfg, "float32", settings.seed)
    model, special = bench.model, bench.special
    set_dropout(model, 0.0)  # both sides without dropout: the two loss trajectories must agree
    if settings.init_std is not None:
        torch.manual_seed(settings.seed)
        with torch.no_grad():
            for weight in (p for p in model.parameters() if p.dim() > 1):
                weight.normal_(0.0, settings.init_std)
    rng, ask = random.Random(settings.seed), random.Random(settings.seed + 1)  # batches; questions
    result: dict[str, Any] = {"peer": settings.peer, "checkout": _commit(checkout)}
    if settings.peer in ("icot", "codi"):
        model = _text_peer(settings, checkout, model, result, console)
    else:
        _coconut_peer(settings, checkout, model, special, bench, rng, ask, result, console)
    result.update(
        model=describe_model(model),
        rim_side={"attention": getattr(model.config, "_attn_implementation", None)},
        settings=settings.model_dump(),
        environment=report.environment(load),
    )
    result["ratios"] = ratios(result)
    write(result, out, console)
    return result


def _text_peer(
    settings: PeersSettings, checkout: Path, model: PreTrainedModel, result: dict, console: Console | None
) -> PreTrainedModel:
    """The iCoT-SI and CODI checks: the preset's GPT-2 with the GPT-2 tokenizer's vocabulary
    (the official code reads text), the same weights on both sides."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(settings.tokenizer)
    config = model.config.to_dict()
    config.update(vocab_size=len(tok), bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(settings.seed)
    model = GPT2LMHeadModel(GPT2Config.from_dict(config)).float()
    set_dropout(model, 0.0)
    icot = icot_run(settings, tok) if settings.peer == "icot" else None
    if icot is not None and "speed" in settings.checks:
        check_timeable(icot)  # before any work
    with tempfile.TemporaryDirectory() as tmp, PeerProcess(settings.peer, settings.python) as peer:
        if settings.peer == "codi":
            official = build_codi(peer, model, tok, settings, checkout, Path(tmp))
            result["peer_side"] = {"versions": official.versions}
            if "equality" in settings.checks:
                result["codi"] = run_codi(peer, official, settings, Path(tmp), console)
            if "speed" in settings.checks:  # changes the peer's weights: after the equality
                result["training"] = codi_training_speed(
                    peer, official.model, official.method, official.examples, settings, console
                )
            return model
        _setup(peer, checkout, model, Path(tmp), settings, result, console, tokenizer=settings.tokenizer)
        assert icot is not None  # the iCoT-SI peer
        if "equality" in settings.checks:
            result["icot"] = run_icot(peer, model, tok, icot, settings, Path(tmp), console)
        if "speed" in settings.checks:
            result["training"] = icot_training_speed(peer, model, icot, settings, console)
    return model


def _coconut_peer(
    settings: PeersSettings,
    checkout: Path,
    model: PreTrainedModel,
    special: SpecialIds,
    bench: Any,
    rng: random.Random,
    ask: random.Random,
    result: dict,
    console: Console | None,
) -> None:
    """The Coconut checks (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp, PeerProcess(settings.peer, settings.python) as peer:
        _setup(peer, checkout, model, Path(tmp), settings, result, console, special=peer_special(special))
        if "equality" in settings.checks:
            rows = random_examples(settings.examples, settings, bench.plain_ids, rng)
            result["equality"] = equality(peer, model, special, rows, settings, Path(tmp), console)
        questions = [
            random_examples(1, settings, bench.plain_ids, ask)[0].question for _ in range(settings.questions)
        ]
        if "generation" in settings.checks:
            result["generation"] = generation(peer, model, special, questions, settings)
        if "speed" in settings.checks:
            result["training"] = training_speed(
                peer, model, special, settings, bench.plain_ids, random.Random(settings.seed + 2), console
            )
            result["inference"] = inference_speed(peer, model, special, questions, settings)
        if "loaders" in settings.checks:
            result["loaders"] = loaders(peer, settings, checkout, Path(tmp))


def _setup(
    peer: PeerProcess,
    checkout: Path,
    model: PreTrainedModel,
    tmp: Path,
    settings: PeersSettings,
    result: dict,
    console: Console | None,
    **extra: Any,
) -> None:
    """Hand the peer rim's weights (saved under `tmp`) and its model config; record its answer
    (versions, attention) as `result["peer_side"]`."""
    weights = tmp / "weights.pt"
    torch.save(model.state_dict(), weights)
    result["peer_side"] = peer.call(
        "setup",
        checkout=str(checkout),
        config=gpt2_config(model),
        weights=str(weights),
        threads=settings.threads,
        **extra,
    )
    where = result["checkout"]["commit"] or checkout
    report.say(console, f"peer {settings.peer} at {where}: {result['peer_side']}")


def _checkout(settings: PeersSettings) -> str:
    path = settings.checkout or os.environ.get(CHECKOUT_ENV)
    if not path:
        raise RimInputError(
            f"no checkout of the official {settings.peer} code: set `checkout` or {CHECKOUT_ENV} "
            "(bench/README.md says how to clone it)",
            source="checkout",
        )
    return path


def _commit(checkout: Path) -> dict[str, Any]:
    """The checkout's folder and git commit (None outside git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"path": str(checkout), "commit": commit}
