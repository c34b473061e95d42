"""Stand-in `Coconut` (see README.md): each continuous thought is the last hidden state of the
position before it, computed by re-running the whole sequence once per thought column."""

from collections import namedtuple

import torch
from torch import nn

Outputs = namedtuple("Outputs", ["loss", "inputs_embeds", "logits"])


class Coconut(nn.Module):
    def __init__(self, base_causallm, latent_token_id, start_latent_id, end_latent_id, eos_token_id):
        super().__init__()
        self.base_causallm = base_causallm
        self.latent_token_id = latent_token_id
        self.eos_token_id = eos_token_id
        self.embedding = base_causallm.get_input_embeddings()

    def _run(self, embeds, attention_mask, position_ids, hidden=False):
        return self.base_causallm(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=hidden,
        )

    def forward(self, input_ids, attention_mask, labels, position_ids, **kwargs):
        embeds = self.embedding(input_ids)
        latent = input_ids == self.latent_token_id
        for col in sorted(set(latent.nonzero()[:, 1].tolist())):
            last = self._run(embeds, attention_mask, position_ids, hidden=True).hidden_states[-1]
            rows = latent[:, col]
            filled = embeds.clone()
            filled[rows, col] = last[rows, col - 1]
            embeds = filled
        logits = self._run(embeds, attention_mask, position_ids).logits
        loss = nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
        )
        return Outputs(loss, embeds, logits)

    def generate(self, input_ids, attention_mask, max_new_tokens=16, **kwargs):
        assert input_ids.shape[0] == 1
        positions = torch.arange(input_ids.shape[1]).reshape(1, -1)
        out = self.forward(input_ids, torch.ones_like(input_ids), input_ids.clone(), positions)
        tokens = input_ids[0].tolist()
        embeds = out.inputs_embeds
        token = int(out.logits[0, -1].argmax())
        for i in range(max_new_tokens):
            if i > 0 and token == self.eos_token_id:
                break
            tokens.append(token)
            if i == max_new_tokens - 1:
                break
            embeds = torch.cat([embeds, self.embedding(torch.tensor([[token]]))], dim=1)
            token = int(self.base_causallm(inputs_embeds=embeds).logits[0, -1].argmax())
        return torch.tensor(tokens).view(1, -1)
