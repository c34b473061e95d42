"""Every causal-LM family users are likely to bring, checked one by one on a tiny random config:
the block-causal training layout computes what the plain inference prompt computes, batched
cached decoding equals plain decoding, a few packed training steps run and `rim infer` answers.
Families that cannot work are refused in one line at load time (`rim.models.families`)."""

import io
import json
from pathlib import Path

import pytest
import torch
from helpers import FAMILIES, tiny_tokenizer
from rich.console import Console
from test_infer import test_batched_cached_decoding_equals_unbatched_uncached as decoding_check
from test_layout_equivalence import (
    test_block_hidden_states_equal_inference_prompt as hidden_check,
)
from test_layout_equivalence import (
    test_readout_logits_equal_plain_causal_sequence as readout_check,
)

from rim.cli import main
from rim.common.errors import RimInputError
from rim.models.families import REFUSED, TESTED, attention_window, check_window
from rim.models.modeling import build_model


def test_every_tested_family_is_checked_here():
    assert sorted(FAMILIES) == sorted(TESTED)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_layout_equals_inference(family):
    readout_check(family, "rim", "stage1", 0.5)  # a readout after every block, and the answer
    hidden_check(family, "stage2")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cached_batched_decoding_equals_plain(family):
    decoding_check(family)


@pytest.fixture(scope="module")
def chain_data(tmp_path_factory) -> Path:
    from rim.data.generators.chain import generate_chain

    root = tmp_path_factory.mktemp("chains")
    for name, n, seed in (("train", 48, 0), ("test", 8, 1)):
        rows = [r.to_dict() for r in generate_chain(n, seed, ops=2, moves=("+1", "+2"))]
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def trained(chain_data, tmp_path_factory):
    """One tiny packed RiM training per family (built on demand, kept for the module)."""
    from rim.common.progress import Reporter
    from rim.config import config_from_dict
    from rim.training.run import run_training

    runs: dict[str, tuple[Path, str]] = {}

    def train(family: str) -> tuple[Path, str]:
        if family not in runs:
            out = tmp_path_factory.mktemp(family) / "run"
            cfg = config_from_dict(
                {
                    "model": {"scratch": FAMILIES[family], "vocab_size": 40, "max_length": 64},
                    "data": {"train": str(chain_data / "train.jsonl")},
                    "method": {"name": "rim", "blocks": 2},
                    "trainer": {
                        "batch_size": 8,
                        "log_every": 1,
                        "packing": True,
                        "stage1": {"steps": 2, "lr": 3e-3},
                        "stage2": {"steps": 2},
                    },
                }
            )
            text = io.StringIO()
            run_training(cfg, out, Reporter(to=Console(file=text, width=400), bars=False))
            runs[family] = (out, text.getvalue())
        return runs[family]

    return train


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_packed_training_and_infer(family, trained, capsys):
    run, printed = trained(family)
    assert f"model family {FAMILIES[family]['model_type']}," in printed
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    capsys.readouterr()
    assert main(["infer", str(run), "4 +1 +2 ?", "--every-block"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2  # one answer after each of the 2 blocks


@pytest.mark.parametrize(
    "spec",
    [
        {"model_type": "bloom", "n_layer": 1, "hidden_size": 16, "n_head": 2},
        {"model_type": "mamba", "num_hidden_layers": 1, "hidden_size": 16},
        {
            "model_type": "falcon",
            "num_hidden_layers": 1,
            "hidden_size": 16,
            "num_attention_heads": 2,
            "alibi": True,
        },
    ],
)
def test_families_that_cannot_work_are_refused_in_one_line(spec):
    with pytest.raises(RimInputError) as err:
        build_model(spec, tiny_tokenizer(), max_length=32)
    message = str(err.value)
    assert "\n" not in message and "model family " + spec["model_type"] in message
    assert spec["model_type"] in REFUSED or "alibi" in message


def test_sliding_window_shorter_than_a_layout_is_refused():
    tok = tiny_tokenizer()
    spec = {**FAMILIES["mistral"], "sliding_window": 4}
    model = build_model(spec, tok, max_length=64)
    assert attention_window(model) == 4
    check_window(model, 4)  # a layout that fits the window trains
    with pytest.raises(RimInputError, match="mistral attends within a sliding window of 4"):
        check_window(model, 5)
    gemma = build_model(FAMILIES["gemma3_text"], tok, max_length=64)
    assert attention_window(gemma) == gemma.config.sliding_window
    assert attention_window(build_model(FAMILIES["qwen2"], tok, max_length=64)) is None


def test_rim_train_refuses_a_window_its_layouts_overflow(chain_data, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "model": {
                    "scratch": {**FAMILIES["mistral"], "sliding_window": 8},
                    "vocab_size": 40,
                    "max_length": 64,
                },
                "data": {"train": str(chain_data / "train.jsonl")},
                "method": {"name": "rim", "blocks": 2},
                "trainer": {"batch_size": 8, "stage1": {"steps": 1}, "stage2": {"steps": 1}},
            }
        )
    )
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sliding window of 8 positions" in err[0]
    assert not (tmp_path / "run").exists()
