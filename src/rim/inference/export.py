"""`rim export RUN OUT`: a model directory that any engine serves unchanged.

The directory holds the trained model (LoRA already merged, safetensors, no remote code), a
tokenizer whose chat template appends the method's prompt suffix (RiM's K memory blocks) after
the user's question, and a `generation_config.json` with the run's decoding (greedy, its answer
budget). Plain transformers, or any engine that honours chat templates, then answers as
`rim infer` does:

    messages = [{"role": "user", "content": question}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    answer = tok.decode(model.generate(ids)[0, ids.shape[1]:], skip_special_tokens=True)
"""

from __future__ import annotations

from pathlib import Path

from transformers import GenerationConfig

from rim.common.errors import RimInputError
from rim.common.outputs import check_not_in_model, follow_umask
from rim.common.rundir_lock import is_empty_run_dir, run_dir_lock
from rim.inference.infer import load_run

TEMPLATE = (
    "{%- set ns = namespace(question='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{%- set ns.question = message['content'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{{ BOS }}{{ ns.question | trim }}"
    "{%- if add_generation_prompt -%}{{ SUFFIX }}{%- endif -%}"
)
"""The last user message is the question; the generation prompt is the method's suffix."""


def export(run: str | Path, out: str | Path) -> Path:
    """Write the standalone model directory of a finished run to `out`; returns `out`."""
    out = Path(out)
    check_not_in_model(out, "export")
    if out.exists() and (not out.is_dir() or not is_empty_run_dir(out)):
        raise RimInputError("exists and is not an empty directory", source=str(out))
    with run_dir_lock(out, "rim export"):  # two exports into one directory: one is refused
        if not is_empty_run_dir(out):
            raise RimInputError("exists and is not an empty directory", source=str(out))
        return _export(run, out)


def _export(run: str | Path, out: Path) -> Path:
    """`export` once this process holds the lock of `out`."""
    loaded = load_run(run, device="cpu")
    if not getattr(loaded.method, "serves_plain", True):
        raise RimInputError(
            f"a {loaded.method.name} model needs its own decoding loop (its "
            "thoughts are not tokens): a plain engine cannot serve it",
            source=str(run),
        )
    tok = loaded.tok
    bos = tok.bos_token if tok("x").input_ids[:1] == [tok.bos_token_id] else ""
    tok.chat_template = TEMPLATE.replace("{{ BOS }}", bos).replace("{{ SUFFIX }}", loaded.info.prompt_suffix)
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    GenerationConfig(
        do_sample=False,
        max_new_tokens=loaded.info.max_new_tokens,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
    ).save_pretrained(out)
    loaded.info.save(out)
    return follow_umask(out)  # safetensors writes the weights 0600; a server may be another user
