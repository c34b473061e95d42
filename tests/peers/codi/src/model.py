"""CODI: a student with continuous thoughts, distilled from the same model as teacher."""

from dataclasses import dataclass, field

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


@dataclass
class ModelArguments:
    model_name_or_path: str = "gpt2"
    lora_r: int = 128
    lora_alpha: int = 16
    lora_init: bool = False
    train: bool = True


@dataclass
class DataArguments:
    data_name: str = field(default=None)


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    model_max_length: int = 512
    num_latent: int = 5
    use_lora: bool = True
    use_prj: bool = False
    prj_dim: int = 2048
    prj_dropout: float = 0.0
    prj_no_ln: bool = False
    distill_loss_div_std: bool = False
    distill_loss_type: str = "smooth_l1"
    distill_loss_factor: float = 1.0
    ref_loss_factor: float = 1.0
    remove_eos: bool = False
    include_last_cot: bool = False
    print_ref_model_stats: bool = False


class CODI(torch.nn.Module):
    def __init__(self, model_args, training_args, lora_config):
        super().__init__()
        self.codi = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
        size = self.codi.config.vocab_size
        self.pad_token_id, self.bot_id, self.eot_id = size, size + 1, size + 2
        self.codi.resize_token_embeddings(size + 3)
        self.tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
        self.num_latent = training_args.num_latent
        self.args = training_args
        dim = self.codi.config.hidden_size
        if training_args.use_prj:
            self.prj = torch.nn.Sequential(
                torch.nn.Dropout(training_args.prj_dropout),
                torch.nn.Linear(dim, training_args.prj_dim),
                torch.nn.GELU(),
                torch.nn.Linear(training_args.prj_dim, dim),
            )
            if not training_args.prj_no_ln:
                self.prj.add_module("ln", torch.nn.LayerNorm(dim))

    def _next(self, out):
        state = out.hidden_states[-1][:, -1:, :]
        return self.prj(state) if self.args.use_prj else state

    def forward(
        self,
        encoder_input_ids,
        decoder_input_ids,
        ref_input_ids,
        labels,
        ref_labels,
        ref_answer_position,
        model_answer_position,
        **unused,
    ):
        out = self.codi(input_ids=encoder_input_ids, use_cache=True, output_hidden_states=True)
        cache, thought = out.past_key_values, self._next(out)
        for _ in range(self.num_latent):
            out = self.codi(
                inputs_embeds=thought, past_key_values=cache, use_cache=True, output_hidden_states=True
            )
            cache, thought = out.past_key_values, self._next(out)
        embeds = self.codi.get_input_embeddings()(decoder_input_ids)
        student = self.codi(
            inputs_embeds=embeds, past_key_values=cache, use_cache=True, output_hidden_states=True
        )
        teacher = self.codi(input_ids=ref_input_ids, output_hidden_states=True)
        rows = torch.arange(labels.shape[0])
        distill = 0
        for s, t in zip(student.hidden_states, teacher.hidden_states):
            target = t[rows, ref_answer_position - 1].detach()
            term = torch.nn.functional.smooth_l1_loss(s[rows, model_answer_position - 1], target)
            if self.args.distill_loss_div_std:
                term = term / target.std()
            distill = distill + term
        distill = distill / len(student.hidden_states) * self.args.distill_loss_factor

        def ce(logits, target):
            return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), target[:, 1:].flatten())

        student_ce = ce(student.logits, labels)
        teacher_ce = ce(teacher.logits, ref_labels) * self.args.ref_loss_factor
        loss = student_ce + distill + teacher_ce
        return {
            "loss": loss,
            "ce_loss": student_ce.item(),
            "distill_loss": distill.item(),
            "ref_ce_loss": teacher_ce.item(),
        }
