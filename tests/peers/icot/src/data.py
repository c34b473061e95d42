"""`question||cot #### answer` lines as `question <eos> cot <eos> #### answer <eos>`, the chain and
answer supervised."""

import torch
from torch.nn.utils.rnn import pad_sequence


class CoTDataset(torch.utils.data.Dataset):
    def __init__(self, tokenizer, file_path, max_length=-1, max_size=-1):
        eos = tokenizer.eos_token
        with open(file_path, encoding="utf-8") as f:
            lines = [line.strip().split("||") for line in f if line.strip() and line.count("||") == 1]
        if max_size > 0:
            lines = lines[:max_size]
        self.examples_all = []
        for question, target in lines:
            cot, answer = target.split("####", 1)
            text = f" {question} {eos} {cot.strip()} {eos} #### {answer.strip()} {eos}"
            self.examples_all.append(tokenizer(text).input_ids)
        self.separator = tokenizer.eos_token_id

    def __len__(self):
        return len(self.examples_all)

    def __getitem__(self, i):
        ids = self.examples_all[i]
        start = ids.index(self.separator) + 1
        labels = [-100] * start + ids[start:]
        return torch.tensor(ids), torch.tensor(labels)


class CoTDataCollator:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, examples):
        ids, labels = zip(*examples)
        ids = pad_sequence(list(ids), batch_first=True, padding_value=self.tokenizer.eos_token_id)
        labels = pad_sequence(list(labels), batch_first=True, padding_value=-100)
        return {"input_ids_all": ids, "labels_all": labels}
