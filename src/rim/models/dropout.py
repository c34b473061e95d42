"""Dropout as the training stages set it: every kind of dropout a model has (modules, attention
rates, LoRA adapters), set to one value or read back per kind."""

from __future__ import annotations

import torch


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout of the model to `p`: dropout modules, attention-dropout rates, and LoRA
    adapters' dropout (built as `Identity` when their dropout was 0, so replaced here)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = p  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module
        lora = getattr(module, "lora_dropout", None)
        if isinstance(lora, torch.nn.ModuleDict):
            for name in list(lora.keys()):
                lora[name] = torch.nn.Dropout(p) if p > 0 else torch.nn.Identity()
    config = getattr(model, "config", None)
    for key in ("attention_dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop", "hidden_dropout"):
        if config is not None and isinstance(getattr(config, key, None), float):
            setattr(config, key, p)


def dropout_by_kind(model: torch.nn.Module) -> dict[str, float]:
    """The largest dropout probability of each kind of module: `lora`, `attention` (attention
    weights), `embedding`, `hidden` (the rest: residual and MLP outputs)."""
    found: dict[str, float] = {}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(getattr(module, "attention_dropout", None), float):
            found["attention"] = max(found.get("attention", 0.0), module.attention_dropout)
        if isinstance(module, torch.nn.ModuleDict) and leaf == "lora_dropout":
            p = max((m.p for m in module.values() if isinstance(m, torch.nn.Dropout)), default=0.0)
            found["lora"] = max(found.get("lora", 0.0), p)
        if not isinstance(module, torch.nn.Dropout) or ".lora_dropout." in f".{name}.":
            continue
        kind = (
            "attention"
            if "attn" in leaf or "attention" in leaf
            else "embedding"
            if "emb" in leaf or leaf == "drop"
            else "hidden"
        )
        found[kind] = max(found.get(kind, 0.0), module.p)
    return dict(sorted(found.items()))
