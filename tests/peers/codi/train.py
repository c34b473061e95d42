"""Build CODI's model and GSM8k-Aug batches (question; the chain without its last step; `The
answer is: N`), then hand them to the trainer."""

import torch
import transformers
from src.model import CODI, DataArguments, ModelArguments, TrainingArguments
from torch.nn.utils.rnn import pad_sequence


def load_dataset(name):
    raise RuntimeError("the stand-in downloads nothing")


class CustomTrainer:
    """Trains the model (the stand-in is only ever run with this class replaced)."""

    def __init__(self, **kwargs):
        raise RuntimeError("the stand-in does not train")


class Rows(torch.utils.data.Dataset):
    def __init__(self, data_dict):
        self.data_dict = data_dict

    def __len__(self):
        return len(self.data_dict["encoder_input_ids"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.data_dict.items()}


def _ids(tok, text):
    return tok(text).input_ids


def answer_at(seq, prompt):
    """The position after the first occurrence of `prompt` in `seq`."""
    return next(i for i in range(len(seq)) if seq[i : i + len(prompt)] == prompt) + len(prompt)


def train():
    parser = transformers.HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses()
    model = CODI(model_args, training_args, None)
    tok = model.tokenizer
    prompt = _ids(tok, "The answer is:")
    data = {
        k: []
        for k in (
            "encoder_input_ids",
            "decoder_input_ids",
            "ref_input_ids",
            "labels",
            "ref_labels",
            "ref_answer_position",
            "model_answer_position",
        )
    }
    for row in load_dataset("zen-E/GSM8k-Aug")["train"]:
        steps = row["cot"].split(" ")
        cot = " ".join(steps if training_args.include_last_cot else steps[:-1])
        question, chain = _ids(tok, row["question"]), _ids(tok, cot)
        answer = _ids(tok, "The answer is: " + row["answer"].split(" ")[-1]) + [tok.eos_token_id]
        ref = question + chain + answer
        decoder = [model.eot_id] + answer
        data["encoder_input_ids"].append(torch.tensor(question + [model.bot_id]))
        data["decoder_input_ids"].append(torch.tensor(decoder))
        data["ref_input_ids"].append(torch.tensor(ref))
        data["labels"].append(torch.tensor(decoder))
        data["ref_labels"].append(torch.tensor([-100] * len(question) + ref[len(question) :]))
        data["ref_answer_position"].append(answer_at(ref, prompt))
        data["model_answer_position"].append(answer_at(decoder, prompt))

    def collate(items):
        pad = model.pad_token_id
        batch = {}
        for key in ("decoder_input_ids", "ref_input_ids"):
            batch[key] = pad_sequence([x[key] for x in items], batch_first=True, padding_value=pad)
        for key in ("labels", "ref_labels"):
            batch[key] = pad_sequence([x[key] for x in items], batch_first=True, padding_value=-100)
        flipped = [x["encoder_input_ids"].flip(0) for x in items]
        batch["encoder_input_ids"] = pad_sequence(flipped, batch_first=True, padding_value=pad).flip(1)
        for key in ("ref_answer_position", "model_answer_position"):
            batch[key] = torch.tensor([x[key] for x in items])
        return batch

    trainer = CustomTrainer(
        model=model,
        tokenizer=tok,
        args=training_args,
        train_dataset=Rows(data),
        eval_dataset=None,
        data_collator=collate,
    )
    trainer.train()
    trainer.save_state()
    trainer.save_model(output_dir=training_args.output_dir)


if __name__ == "__main__":
    train()
