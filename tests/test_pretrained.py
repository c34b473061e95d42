"""Fine-tuning a pretrained model from a local directory: new token rows, LoRA, plain reload."""

import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from rim.common.progress import Reporter
from rim.config import config_from_dict
from rim.models.modeling import load_model, load_tokenizer
from rim.training.run import run_training

WORDS = ["<unk>", "<eos>", "?", "+", "="] + [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 'pretrained' GPT-2 directory whose tokenizer lacks the block tokens and a pad token."""
    path = tmp_path_factory.mktemp("pretrained")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(WORDS), n_layer=2, n_embd=32, n_head=2, n_positions=64, eos_token_id=1, bos_token_id=1
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    rows = [
        {"question": f"{a} + {b} ?", "steps": [f"{a} + {b}"], "answer": str((a + b) % 10)}
        for a in range(10)
        for b in range(10)
    ]
    (path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_new_rows_start_at_the_mean_embedding(pretrained):
    tok = load_tokenizer(str(pretrained))
    assert tok.pad_token == "<eos>"
    model = load_model(str(pretrained), tok)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(WORDS) + 3
    mean = emb[: len(WORDS)].mean(0)
    for row in emb[len(WORDS) :]:
        torch.testing.assert_close(row, mean)


def test_lora_trains_adapters_and_only_the_new_rows(pretrained, tmp_path):
    original = AutoModelForCausalLM.from_pretrained(pretrained).get_input_embeddings().weight
    cfg = config_from_dict(
        {
            "model": {"name_or_path": str(pretrained), "lora": {"r": 4, "alpha": 8}},
            "data": {"train": str(pretrained / "train.jsonl")},
            "method": {"name": "rim", "blocks": 2},
            "trainer": {
                "batch_size": 16,
                "stage1": {"steps": 6, "lr": 1e-2},
                "stage2": {"steps": 4, "lr": 1e-2},
            },
        }
    )
    run_training(cfg, tmp_path / "run", Reporter(enabled=False))
    final = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    emb = final.get_input_embeddings().weight
    n = len(WORDS)
    torch.testing.assert_close(emb[:n], original, msg="old embedding rows must stay frozen")
    assert not torch.allclose(emb[n:], original.mean(0).expand(3, -1)), "new rows must train"
    base = GPT2LMHeadModel.from_pretrained(pretrained)
    merged = final.transformer.h[0].attn.c_attn.weight
    assert not torch.allclose(merged, base.transformer.h[0].attn.c_attn.weight), (
        "LoRA must be merged into the saved weights"
    )
    assert not any("lora" in k for k in final.state_dict())


def test_a_dense_gguf_model_loses_its_quantizer_and_saves_as_a_plain_model(pretrained, tmp_path):
    """A model from a GGUF file (transformers leaves its quantizer on it, and refuses to save it)
    is a plain model after `fit_embeddings`; the real file is tests/test_smollm2.py's."""
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "GgufConfig"):
        pytest.skip("transformers 4 leaves no quantizer on a GGUF model")
    from transformers.quantizers.quantizer_gguf import GgufHfQuantizer
    from transformers.utils.quantization_config import QuantizationMethod

    from rim.models.modeling import fit_embeddings

    tok = load_tokenizer(str(pretrained))
    model = AutoModelForCausalLM.from_pretrained(pretrained)
    config = transformers.GgufConfig(gguf_file="model.gguf", dequantize=True)
    model.hf_quantizer, model.is_quantized = GgufHfQuantizer(config), True
    model.quantization_method, model.config.quantization_config = QuantizationMethod.GGUF, config
    with pytest.raises(ValueError, match="not serializable"):
        model.save_pretrained(tmp_path / "before")
    fit_embeddings(model, tok).save_pretrained(tmp_path / "after")
    saved = json.loads((tmp_path / "after" / "config.json").read_text())
    assert "quantization_config" not in saved
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "after")
    assert getattr(reloaded, "hf_quantizer", None) is None
    torch.testing.assert_close(reloaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
