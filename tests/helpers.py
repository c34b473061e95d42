"""Tiny models, tokenizers and data shared by the tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from rim.data.records import Record
from rim.models.modeling import build_model, scratch_tokenizer

ARCHS = {
    "gpt2": {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2},
    "llama": {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 64,
    },
}

_DECODER = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
FAMILIES = {
    "gpt2": ARCHS["gpt2"],
    "llama": ARCHS["llama"],
    "qwen2": {"model_type": "qwen2", **_DECODER, "num_key_value_heads": 2},
    "qwen3": {"model_type": "qwen3", **_DECODER, "num_key_value_heads": 2, "head_dim": 8},
    "mistral": {"model_type": "mistral", **_DECODER, "num_key_value_heads": 2, "head_dim": 8},
    "gemma2": {"model_type": "gemma2", **_DECODER, "num_key_value_heads": 2, "head_dim": 8},
    "gemma3_text": {"model_type": "gemma3_text", **_DECODER, "num_key_value_heads": 2, "head_dim": 8},
    "phi3": {"model_type": "phi3", **_DECODER, "num_key_value_heads": 2},
    "olmo2": {"model_type": "olmo2", **_DECODER, "num_key_value_heads": 2},
    "gpt_neox": {"model_type": "gpt_neox", **_DECODER},
    "falcon": {"model_type": "falcon", "num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4},
}
"""Tiny random configs of every tested model family (tests/test_architectures.py)."""

RECORDS = [
    Record("what is 3 + 4 * 2 ?", ("3 + 4 = 7", "7 * 2 = 14"), "14"),
    Record("5 ?", (), "5"),
    Record("a b c d e f g h ?", ("one", "two words", "three more words here"), "done now"),
]


def tiny_tokenizer():
    texts = [t for r in RECORDS for t in (r.question, *r.steps, r.answer)]
    return scratch_tokenizer(texts, vocab_size=120)


# The GPU check (bench/gpu.sh) runs the equivalence and decoding tests on a device and dtype:
DEVICE = torch.device(os.environ.get("RIM_TEST_DEVICE", "cpu"))
DTYPE = getattr(torch, os.environ.get("RIM_TEST_DTYPE", "float32"))
TOL = float(os.environ.get("RIM_TEST_TOL", "1e-5"))


def tiny_model(arch: str, tok, seed: int = 0):
    torch.manual_seed(seed)
    spec = ARCHS[arch] if arch in ARCHS else FAMILIES[arch]
    return build_model(spec, tok, max_length=256).to(DEVICE, DTYPE).eval()


def on_device(batch: dict) -> dict:
    """A collated batch on the test device, its float mask in the test dtype."""
    return {
        k: v.to(DEVICE, DTYPE) if v.is_floating_point() and k == "attention_mask" else v.to(DEVICE)
        for k, v in batch.items()
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
