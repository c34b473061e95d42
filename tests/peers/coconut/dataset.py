"""Stand-in data code (see README.md): Coconut's text format and curriculum, and a collator that
left-pads each row so that its first latent token lands in the same column."""

import itertools
import json

import torch
from datasets import Dataset


def get_dataset(path, tokenizer, max_size=1000000000):
    with open(path) as f:
        rows = json.load(f)[:max_size]
    # the pieces must tokenise as the whole text does (checked on the first row)
    first = rows[0]
    whole = first["question"] + "\n" + "\n".join(first["steps"]) + "\n### " + first["answer"]
    pieces = tokenizer.encode(first["question"] + "\n") + [
        t for s in first["steps"] for t in tokenizer.encode(s + "\n", add_special_tokens=False)
    ]
    pieces += tokenizer.encode("### " + first["answer"], add_special_tokens=False)
    assert tokenizer.encode(whole) == pieces, "the tokenizer merges across the pieces"
    return Dataset.from_dict(
        {
            "question_tokenized": [tokenizer.encode(r["question"] + "\n") for r in rows],
            "steps_tokenized": [
                [tokenizer.encode(s + "\n", add_special_tokens=False) for s in r["steps"]] for r in rows
            ],
            "answer_tokenized": [
                tokenizer.encode("### " + r["answer"], add_special_tokens=False) + [tokenizer.eos_token_id]
                for r in rows
            ],
            "idx": list(range(len(rows))),
        }
    )


def get_question_latent_dataset(
    scheduled_stage, base_dataset_valid, configs, start_id, latent_id, end_id, no_special_marker=False
):
    def prompt(sample):
        steps = configs.max_latent_stage if configs.pad_latent_to_max else len(sample["steps_tokenized"])
        latents = min(steps, configs.max_latent_stage, scheduled_stage) * configs.c_thought
        ids = sample["question_tokenized"] + [start_id] + [latent_id] * latents + [end_id]
        return {"input_ids": ids, "idx": sample["idx"], "attention_mask": [1] * len(ids)}

    return base_dataset_valid.map(prompt, remove_columns=list(base_dataset_valid.features))


def get_cot_latent_dataset(
    scheduled_stage,
    base_dataset,
    configs,
    start_id,
    latent_id,
    end_id,
    no_special_marker=False,
    shuffle=False,
):
    def lay_out(sample):
        steps = sample["steps_tokenized"]
        if scheduled_stage > configs.max_latent_stage:
            skip = len(steps)
            latents = (
                configs.max_latent_stage
                if configs.pad_latent_to_max
                else min(len(steps), configs.max_latent_stage)
            )
        else:
            skip = latents = scheduled_stage
        latents *= configs.c_thought
        head = sample["question_tokenized"] + [start_id] + [latent_id] * latents + [end_id]
        tail = list(itertools.chain.from_iterable(steps[skip:])) + sample["answer_tokenized"]
        tokens = head + tail
        return {
            "input_ids": tokens,
            "labels": [-100] * len(head) + tail,
            "attention_mask": [1] * len(tokens),
            "idx": sample["idx"],
            "position_ids": list(range(len(tokens))),
        }

    return base_dataset.map(lay_out, remove_columns=list(base_dataset.features))


class MyCollator:
    def __init__(self, tokenizer, latent_id=None, label_pad_token_id=-100):
        self.pad = tokenizer.pad_token_id
        self.latent_id = latent_id
        self.label_pad = label_pad_token_id

    def __call__(self, features):
        firsts = [f["input_ids"].index(self.latent_id) for f in features if self.latent_id in f["input_ids"]]
        align = max(firsts, default=0)
        rows = []
        for f in features:
            left = align - f["input_ids"].index(self.latent_id) if self.latent_id in f["input_ids"] else 0
            rows.append(
                {
                    "input_ids": [self.pad] * left + f["input_ids"],
                    "attention_mask": [0] * left + f["attention_mask"],
                    "labels": [self.label_pad] * left + f["labels"],
                    "position_ids": [0] * left + list(range(len(f["input_ids"]))),
                }
            )
        width = max(len(r["input_ids"]) for r in rows)
        fill = {"input_ids": self.pad, "attention_mask": 0, "labels": self.label_pad, "position_ids": 0}
        batch = {k: torch.tensor([r[k] + [v] * (width - len(r[k])) for r in rows]) for k, v in fill.items()}
        batch["idx"] = torch.tensor([f["idx"] for f in features])
        return batch
