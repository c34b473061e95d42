"""A causal LM with the mean next-token loss over labelled positions."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


class ImplicitModel(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.base_model = AutoModelForCausalLM.from_pretrained(config.base_model)
        self.tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_name)

    def compute_loss(self, input_ids, labels, position_ids=None, output_attentions=False):
        outputs = self.base_model(input_ids=input_ids)
        logits, target = outputs.logits[:, :-1], labels[:, 1:]
        outputs.loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
        )
        keep = target >= 0
        outputs.token_accuracy = ((logits.argmax(-1) == target) & keep).sum() / keep.sum()
        return outputs

    def save_pretrained(self, path):
        self.base_model.save_pretrained(path)
