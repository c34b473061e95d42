"""`rim bench peers`: rim beside a peer's official code.

Everywhere: the whole benchmark against a stand-in checkout (tests/peers/coconut, written for
these tests with the official interface) in a subprocess of this Python; a stand-in with a bug is
caught. Where a checkout of the official code is present (RIM_PEER_CHECKOUT, and its Python in
RIM_PEER_PYTHON): rim's Coconut against it, loss, logits and gradients at every stage, and greedy
answers."""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
from pathlib import Path

import pytest
from helpers import RECORDS

from rim.bench import report
from rim.bench.common import load_settings
from rim.bench.peer_process import SCRIPTS, PeerProcess, check_checkout
from rim.bench.peers import run_peers
from rim.bench.settings import PEER_CHECKS, PEERS_PATHS, PeersSettings
from rim.common.errors import RimInputError, RimRunError
from rim.data.generators.multiplication import multiplication_record
from rim.data.icot import format_icot_line
from rim.models.modeling import scratch_tokenizer

STAND_IN = Path(__file__).parent / "peers" / "coconut"
OFFICIAL = os.environ.get("RIM_PEER_CHECKOUT")


def tiny_settings(tmp_path: Path, checkout: Path, **over) -> PeersSettings:
    preset = tmp_path / "model.yaml"
    preset.write_text(
        "model:\n  scratch: {model_type: gpt2, n_layer: 2, n_embd: 32, n_head: 2}\n"
        "  vocab_size: 64\n  max_length: 128\n"
    )
    values = dict(
        checkout=str(checkout),
        model=str(preset),
        latent_stages=2,
        thoughts_per_step=[1, 2],
        examples=4,
        question_tokens=8,
        step_tokens=3,
        questions=6,
        max_new_tokens=4,
        batch_size=4,
        steps_per_round=2,
        warmup=0,
        repeats=1,
        batches=[1, 3],
        threads=1,
    )
    return PeersSettings(**{**values, **over})


def coconut_data(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A Coconut JSON file, an iCoT text file (one row without CoT) and a tokenizer folder."""
    rows = [{"question": r.question, "steps": list(r.steps), "answer": r.answer} for r in RECORDS if r.steps]
    json_file = tmp_path / "data.json"
    json_file.write_text(json.dumps(rows))
    text_file = tmp_path / "data.txt"
    # iCoT text as GSM8k-Aug writes it: calculator strings `<<...>>`, one row without a CoT
    lines = ["what is 3 + 4 * 2 ?||<<4*2=8>> <<3+8=11>> #### 11", "5 ?|| #### 5"]
    text_file.write_text("".join(line + "\n" for line in lines))
    tok_dir = tmp_path / "tok"
    texts = [t for r in RECORDS for t in (r.question, *r.steps, r.answer)] + lines
    scratch_tokenizer(texts, vocab_size=160).save_pretrained(tok_dir)
    return json_file, text_file, tok_dir


def test_stand_in_peer_agrees_everywhere(tmp_path):
    json_file, text_file, tok_dir = coconut_data(tmp_path)
    settings = tiny_settings(
        tmp_path, STAND_IN, data=[str(json_file), str(text_file)], tokenizer=str(tok_dir), checks=PEER_CHECKS
    )
    result = run_peers(settings, tmp_path / "out")

    rows = result["equality"]
    assert len(rows) == 2 * 4  # c = 1, 2 x stages 0, 1, 2 and the final one
    assert [r["stage"] for r in rows[:4]] == ["coconut0", "coconut1", "coconut2", "coconut-final"]
    assert all(r["labels_equal"] and r["equal"] for r in rows), rows
    assert all(r["supervised"] > 0 and r["grad_max"] > 0 for r in rows)
    # more thoughts, fewer text tokens supervised
    assert rows[0]["supervised"] > rows[2]["supervised"] > rows[3]["supervised"]

    gen = result["generation"]
    assert gen["same_batch1"] == gen["same_batched"] == gen["questions"] == 6
    assert gen["distinct_answers"] > 1

    train = result["training"]
    assert len(train["peer_s_repeats"]) == len(train["rim_s_repeats"]) == 2
    # same weights, batches and optimizer: the same first loss, and trajectories that stay together
    assert train["first_loss_diff"] < 1e-5 and train["loss_diff_max"] < 1e-2
    # where rim's step goes, and the one-pass floor measured beside it
    assert set(train["rim_parts_s"]) == {"collate", "forward_backward", "optimizer"}
    assert all(v > 0 for v in train["rim_parts_s"].values())
    assert train["floor_forward_backward_s"] > 0 and train["rim_over_floor"] > 0

    table = {(r["implementation"], r["method"], r["batch"]) for r in result["inference"]}
    assert ("official coconut", "coconut", 1) in table
    assert {(m, b) for impl, m, b in table if impl == "rim"} == {
        (m, b) for m in ("coconut", "rim", "nocot") for b in (1, 3)
    }
    assert all(r["tokens"] == 4 for r in result["inference"])  # every answer runs to max_new_tokens

    by_file = {r["file"]: r for r in result["loaders"]}
    assert by_file["data.json"]["same"] == by_file["data.json"]["peer_examples"] == 2
    # the record without CoT: the official loader keeps one empty step, rim none
    assert by_file["data.txt"]["empty_cot"] == 1 and by_file["data.txt"]["other_differences"] == 0

    assert set(result["ratios"]) >= {"training_speedup", "coconut_b1_ttft_x", "rim_b3_throughput_x"}
    written = json.loads((tmp_path / "out" / "peers.json").read_text())
    assert written["equality"] == json.loads(json.dumps(rows))
    markdown = (tmp_path / "out" / "peers.md").read_text()
    assert "## Equality" in markdown and "## Inference" in markdown and "## Data loaders" in markdown


def test_a_peer_that_differs_is_caught(tmp_path):
    """The comparison is not vacuous: a stand-in that feeds back the hidden state of the thought's
    own position (instead of the one before) differs once there are thoughts, in the loss and in
    the answers."""
    buggy = tmp_path / "buggy"
    shutil.copytree(STAND_IN, buggy)
    source = (buggy / "coconut.py").read_text()
    assert "last[rows, col - 1]" in source
    (buggy / "coconut.py").write_text(source.replace("last[rows, col - 1]", "last[rows, col]"))
    settings = tiny_settings(
        tmp_path, buggy, checks=["equality", "generation"], latent_stages=1, thoughts_per_step=[2], speed_c=2
    )
    result = run_peers(settings, tmp_path / "out")
    equal = {r["stage"]: r["equal"] for r in result["equality"]}
    assert equal == {"coconut0": True, "coconut1": False, "coconut-final": False}  # equal without thoughts
    assert result["generation"]["same_batch1"] < result["generation"]["questions"]


def test_settings_file_is_valid():
    path = Path(__file__).parents[1] / "configs" / "bench" / "peers-coconut-cpu.yaml"
    settings = load_settings(PeersSettings, path, PEERS_PATHS)
    assert settings.checks == list(PEER_CHECKS[:3]) and settings.model and Path(settings.model).is_file()
    with pytest.raises(RimInputError, match="loaders check reads"):
        load_settings(PeersSettings, path, PEERS_PATHS, checks=list(PEER_CHECKS))
    assert [Path(p).name for p in settings.data] == ["valid.json", "valid.txt"]


def test_checkout_and_peer_errors(tmp_path, monkeypatch):
    with pytest.raises(RimInputError, match="missing coconut.py, dataset.py"):
        check_checkout("coconut", tmp_path)
    monkeypatch.delenv("RIM_PEER_CHECKOUT", raising=False)
    with pytest.raises(RimInputError, match="RIM_PEER_CHECKOUT"):
        run_peers(PeersSettings(), tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(STAND_IN, broken)
    (broken / "dataset.py").write_text("raise ImportError('no datasets here')\n")
    with PeerProcess("coconut") as peer, pytest.raises(RimRunError, match="no datasets here"):
        peer.call("setup", checkout=str(broken), config={}, weights="", special={}, threads=1)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", [*SCRIPTS.values(), SCRIPTS["coconut"].with_name("peer_serve.py")])
def test_peer_scripts_import_nothing_of_rim(script):
    """The peer scripts run in the peer's environment, where rim is not installed."""
    tree = ast.parse(script.read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules and not any(m.split(".")[0] == "rim" for m in modules)


@pytest.mark.skipif(not OFFICIAL, reason="no checkout of the official Coconut code (RIM_PEER_CHECKOUT)")
def test_equal_to_the_official_coconut(tmp_path):
    """rim's Coconut against facebookresearch/coconut: every stage, c = 1 and 2, to 1e-5 in fp32;
    the same greedy answers."""
    settings = tiny_settings(
        tmp_path,
        Path(OFFICIAL),
        python=os.environ.get("RIM_PEER_PYTHON"),
        checks=["equality", "generation"],
        latent_stages=3,
        examples=8,
        question_tokens=24,
        step_tokens=6,
        questions=50,
        max_new_tokens=8,
    )
    result = run_peers(settings, tmp_path / "out")
    assert len(result["equality"]) == 2 * 5
    assert all(r["equal"] for r in result["equality"]), result["equality"]
    assert result["generation"]["same_batch1"] == result["generation"]["same_batched"] == 50


ICOT_STAND_IN = Path(__file__).parent / "peers" / "icot"
ICOT_ARGS = dict(
    max_size=12,
    batch_size=4,
    epochs=6,
    remove_per_epoch=3,  # a token every step
    removal_smoothing_lambda=1.0,
    remove_all_when_remove_beyond=12,
    reset_optimizer=True,
    lr=0.0,
    seed=3,
)


def icot_settings(tmp_path: Path, checkout: Path, **args) -> PeersSettings:
    """12 multiplication problems as an iCoT text file, with a tokenizer trained on them."""
    rng = random.Random(0)
    records = [multiplication_record(rng.randrange(10, 100), rng.randrange(100, 1000)) for _ in range(12)]
    lines = [format_icot_line(r) for r in records]
    return text_peer_settings(
        tmp_path,
        checkout,
        lines,
        ["+ ( ) ####"],
        60,
        peer="icot",
        official_args={**ICOT_ARGS, **args},
        icot_grad_steps=[0, 7],
    )


def text_peer_settings(
    tmp_path: Path, checkout: Path, lines: list[str], extra_text: list[str], vocab_size: int, **fields
) -> PeersSettings:
    """Settings for a peer that reads a text file: `lines` written as its train file and a
    tokenizer trained on them (and `extra_text`); equality checks unless `fields` say."""
    data = tmp_path / "train.txt"
    data.write_text("".join(line + "\n" for line in lines))
    tok_dir = tmp_path / "tok"
    scratch_tokenizer([*lines, *extra_text], vocab_size=vocab_size).save_pretrained(tok_dir)
    fields = {"checks": ["equality"], **fields}
    return tiny_settings(tmp_path, checkout, train_file=str(data), tokenizer=str(tok_dir), **fields)


def test_stand_in_icot_peer_agrees_everywhere(tmp_path):
    result = run_peers(icot_settings(tmp_path, ICOT_STAND_IN), tmp_path / "out")["icot"]
    assert result["steps"] == 18 and result["steps_per_epoch"] == 3
    assert result["loaders"]["different"] == 0
    schedule = result["schedule"]
    assert schedule["rows"] == 72 and schedule["equal"] == 72 and schedule["with_offset"] > 0
    assert result["resets"]["equal"] and result["resets"]["rim"][:3] == [1, 2, 3]
    assert result["distribution_diff"] < 1e-6
    loss = result["loss"]
    assert loss["ids_equal"] and loss["equal"] and loss["grad_max"] > 0
    markdown = (tmp_path / "out" / "peers.md").read_text()
    assert "## iCoT-SI: a recorded official training run" in markdown and "72 of 72 equal" in markdown


def test_an_icot_peer_that_removes_differently_is_caught(tmp_path):
    buggy = tmp_path / "buggy"
    shutil.copytree(ICOT_STAND_IN, buggy)
    source = (buggy / "src" / "train.py").read_text()
    assert "start + removing + int(offsets[i])" in source
    (buggy / "src" / "train.py").write_text(
        source.replace("start + removing + int(offsets[i])", "start + removing")
    )
    result = run_peers(icot_settings(tmp_path, buggy, epochs=2), tmp_path / "out")["icot"]
    # the offsets drawn are ignored: rows that drew one differ, in the tokens left and the loss
    assert 0 < result["schedule"]["equal"] < result["schedule"]["rows"]
    assert not result["loss"]["ids_equal"] and not result["loss"]["equal"]


OFFICIAL_ICOT = os.environ.get("RIM_PEER_ICOT_CHECKOUT")
GPT2_TOKENIZER = os.environ.get("RIM_GPT2_TOKENIZER")


@pytest.mark.skipif(
    not (OFFICIAL_ICOT and GPT2_TOKENIZER),
    reason="no official iCoT checkout (RIM_PEER_ICOT_CHECKOUT) or GPT-2 tokenizer (RIM_GPT2_TOKENIZER)",
)
def test_equal_to_the_official_icot(tmp_path, shared_data):
    """rim's iCoT-SI against da03/Internalize_CoT_Step_by_Step on the published 4x4 problems: the
    same chain tokens removed at every step and smoothing draw, the same resets, the same loss."""
    settings = tiny_settings(
        tmp_path,
        Path(OFFICIAL_ICOT),
        python=os.environ.get("RIM_PEER_PYTHON"),
        peer="icot",
        checks=["equality"],
        train_file=str(shared_data / "multiplication" / "4x4" / "valid.txt"),
        official_args={
            **ICOT_ARGS,
            "max_size": 16,
            "remove_per_epoch": 4,
            "remove_all_when_remove_beyond": 40,
        },
        icot_grad_steps=[0],
        tokenizer=GPT2_TOKENIZER,
    )
    result = run_peers(settings, tmp_path / "out")["icot"]
    assert result["loaders"]["different"] == 0 and result["loaders"]["trailing_space"] == 16
    assert result["schedule"]["equal"] == result["schedule"]["rows"] > 0
    assert result["resets"]["equal"] and result["loss"]["equal"]


CODI_STAND_IN = Path(__file__).parent / "peers" / "codi"
CODI_ARGS = dict(
    num_latent=3,
    use_prj=True,
    prj_dim=16,
    distill_loss_div_std=True,
    remove_eos=True,
    use_lora=False,
    lora_init=True,
    seed=11,
)


def codi_settings(tmp_path: Path, checkout: Path, examples: int = 6) -> PeersSettings:
    """Six GSM8k-Aug-like problems (two pairs of questions of one length) and a tokenizer."""
    lines = [
        "what is 3 + 4 * 2 ?||<<4*2=8>> <<3+8=11>> #### 11",
        "what is 5 + 1 * 2 ?||<<1*2=2>> <<5+2=7>> #### 7",
        "a b c d e ?||<<2*3=6>> <<6+1=7>> <<7*2=14>> #### 14",
        "a b c e d ?||<<2*2=4>> <<4+1=5>> <<5*2=10>> #### 10",
        "one more ?||<<1+1=2>> #### 2",
        "and another question here with more words ?||<<9-4=5>> <<5*5=25>> #### 25",
    ]
    return text_peer_settings(
        tmp_path,
        checkout,
        lines,
        ["The answer is: 0 1 2 3 4 5 6 7 8 9"],
        120,
        peer="codi",
        official_args=CODI_ARGS,
        codi_examples=examples,
    )


def test_stand_in_codi_peer_agrees_everywhere(tmp_path):
    result = run_peers(codi_settings(tmp_path, CODI_STAND_IN), tmp_path / "out")["codi"]
    assert result["examples"] == 6 and len(result["cases"]) == 7  # each alone, then one batch
    assert len(result["cases"][-1]["rows"]) == 2
    assert result["equal"], result["cases"]
    assert all(c["distill_rim"] > 0 and c["grad_max"] > 0 and not c["missing_grads"] for c in result["cases"])
    markdown = (tmp_path / "out" / "peers.md").read_text()
    assert "## CODI: the official loss terms on the official batches" in markdown


def test_a_codi_peer_that_differs_is_caught(tmp_path):
    buggy = tmp_path / "buggy"
    shutil.copytree(CODI_STAND_IN, buggy)
    source = (buggy / "src" / "model.py").read_text()
    assert "term = term / target.std()" in source
    (buggy / "src" / "model.py").write_text(source.replace("term = term / target.std()", "term = term"))
    result = run_peers(codi_settings(tmp_path, buggy, examples=2), tmp_path / "out")["codi"]
    # the distillation is not divided by the teacher's std: that term, and the loss, differ
    assert not result["equal"]
    assert all(c["distill_diff"] > 1e-4 and c["student_diff"] < 1e-5 for c in result["cases"])


@pytest.mark.parametrize("peer", ["icot", "codi"])
def test_text_peers_time_the_official_training_loop_beside_rims(tmp_path, peer):
    """The speed check of iCoT-SI and CODI: the stand-in's training steps beside rim's, after the
    equality check (CODI's changes the peer's weights, so it must come last)."""
    if peer == "icot":
        settings = icot_settings(tmp_path, ICOT_STAND_IN)  # 12 rows, batch 4, 6 epochs: 18 steps
        steps = 17  # the seconds between 18 optimizer steps' ends
    else:
        settings = codi_settings(tmp_path, CODI_STAND_IN)
        steps = settings.steps_per_round
    settings = PeersSettings(**{**settings.model_dump(), "checks": ["equality", "speed"], "repeats": 2})
    result = run_peers(settings, tmp_path / "out")
    training = result["training"]
    assert len(training["peer_s_repeats"]) == len(training["rim_s_repeats"]) == 2 * steps
    assert min(training["peer_s_repeats"] + training["rim_s_repeats"]) > 0
    assert result["ratios"]["training_speedup"] == training["speedup"] > 0
    assert result["codi"]["equal"] if peer == "codi" else result["icot"]["loss"]["equal"]
    markdown = (tmp_path / "out" / "peers.md").read_text()
    assert "## Training step" in markdown and f"rim {training['speedup']:.2f}x" in markdown
    assert (tmp_path / "out" / "peers.png").exists() or report.pyplot() is None


def test_icot_speed_check_refuses_runs_it_cannot_time_alike(tmp_path):
    """Options that change what an official step is, and a run of one step (a step is timed
    between two), are refused in one line before any work."""
    settings = icot_settings(tmp_path, ICOT_STAND_IN).model_dump()
    with pytest.raises(ValueError, match=r"official_args \['accumulate'\] change the official loop"):
        PeersSettings(**{**settings, "checks": ["speed"], "official_args": {"accumulate": 2}})
    one_step = {**settings["official_args"], "max_size": 4, "epochs": 1}  # 4 rows, batch 4
    settings = PeersSettings(**{**settings, "checks": ["equality", "speed"], "official_args": one_step})
    with pytest.raises(RimInputError, match="4 rows, batch 4 and 1 epochs make 1"):
        run_peers(settings, tmp_path / "out")
    assert not (tmp_path / "out").exists()


OFFICIAL_CODI = os.environ.get("RIM_PEER_CODI_CHECKOUT")


@pytest.mark.skipif(
    not (OFFICIAL_CODI and GPT2_TOKENIZER),
    reason="no official CODI checkout (RIM_PEER_CODI_CHECKOUT) or GPT-2 tokenizer (RIM_GPT2_TOKENIZER)",
)
def test_equal_to_the_official_codi(tmp_path, shared_data):
    """rim's CODI against zhenyi4/codi on published GSM8k-Aug problems: the loss, each term and
    every gradient, each problem alone, to 1e-5 in fp32 (the official code in its own Python,
    RIM_PEER_CODI_PYTHON)."""
    settings = tiny_settings(
        tmp_path,
        Path(OFFICIAL_CODI),
        python=os.environ.get("RIM_PEER_CODI_PYTHON"),
        peer="codi",
        checks=["equality"],
        train_file=str(shared_data / "gsm8k_aug" / "valid.txt"),
        official_args={**CODI_ARGS, "num_latent": 6, "print_ref_model_stats": False},
        codi_examples=4,
        tokenizer=GPT2_TOKENIZER,
    )
    result = run_peers(settings, tmp_path / "out")["codi"]
    assert len(result["cases"]) >= 4 and result["equal"], result["cases"]
