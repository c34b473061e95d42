"""Stepwise internalization: train on `question <eos> cot <eos> answer <eos>`, removing the chain's
first tokens, one more every round(steps per epoch / remove_per_epoch) batches, plus a random
offset o with P(o) proportional to exp(-lambda o); a new AdamW when the count grows."""

import argparse
import math

import torch
from configuration_model import ImplicitModelConfig
from data import CoTDataCollator, CoTDataset
from model import ImplicitModel
from utils import batch_ids, get_sep_position


def compute_lambda_distribution(lam, truncate_length=100):
    if lam == float("inf"):
        probs = torch.zeros(truncate_length)
        probs[0] = 1
        return probs
    probs = (1 - math.exp(-lam)) * torch.exp(-lam * torch.arange(truncate_length).float())
    probs[-1] += 1 - probs.sum()
    return probs


def evaluate(*args, **kwargs):
    raise NotImplementedError("the stand-in does not decode")


def options():
    p = argparse.ArgumentParser()
    for name, kind, default in [
        ("model", str, "gpt2"),
        ("train_path", str, None),
        ("val_path", str, None),
        ("save_model", str, None),
        ("epochs", int, 1),
        ("lr", float, 5e-5),
        ("batch_size", int, 32),
        ("remove_per_epoch", float, 8),
        ("remove_all_when_remove_beyond", str, "inf"),
        ("removal_smoothing_lambda", float, float("inf")),
        ("remove_start_from", int, 0),
        ("max_size", int, -1),
        ("seed", int, 1234),
        ("max_grad_norm", float, 1.0),
    ]:
        p.add_argument(f"--{name}", type=kind, default=default)
    p.add_argument("--reset_optimizer", action="store_true")
    return p.parse_args()


def main():
    args = options()
    beyond = (
        float("inf")
        if args.remove_all_when_remove_beyond == "inf"
        else int(args.remove_all_when_remove_beyond)
    )
    torch.manual_seed(args.seed)
    probs = compute_lambda_distribution(args.removal_smoothing_lambda)
    model = ImplicitModel(ImplicitModelConfig(base_model=args.model))
    tok = model.tokenizer
    data = CoTDataset(tok, args.train_path, max_size=args.max_size)
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch_size, shuffle=True, collate_fn=CoTDataCollator(tok)
    )
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    every = int(round(len(loader) / args.remove_per_epoch))
    removing, counter, last_all_gone = args.remove_start_from, 0, False
    for epoch in range(args.epochs):
        for batch in loader:
            before = removing
            if counter == every or every == 0:
                removing, counter = removing + 1, 0
            counter += 1
            if removing > before and args.reset_optimizer and not last_all_gone:
                optimizer = torch.optim.AdamW(params, lr=args.lr)
            if removing >= beyond:
                removing = float("inf")
            ids, labels = batch["input_ids_all"], batch["labels_all"]
            first = get_sep_position(ids, tok.eos_token_id)
            second = get_sep_position(ids, tok.eos_token_id, skip=1)
            end = get_sep_position(ids, tok.eos_token_id, skip=2)
            all_gone = False
            if removing > 0 or args.removal_smoothing_lambda != float("inf"):
                offsets = torch.multinomial(probs, ids.shape[0], replacement=True)
                kept_ids, kept_labels, all_gone = [], [], True
                for i in range(ids.shape[0]):
                    start = int(first[i]) + 1
                    stop = min(start + removing + int(offsets[i]), int(second[i]))
                    all_gone = all_gone and stop == int(second[i])
                    kept_ids.append(torch.cat([ids[i, :start], ids[i, stop : end[i] + 1]]))
                    kept_labels.append(torch.cat([labels[i, :start], labels[i, stop : end[i] + 1]]))
                ids = batch_ids(kept_ids, tok.eos_token_id, ids.device, ids.dtype)
                labels = batch_ids(kept_labels, -100, ids.device, ids.dtype)
            last_all_gone = all_gone
            loss = model.compute_loss(input_ids=ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        evaluate(model, removing)
        model.save_pretrained(f"{args.save_model}/checkpoint_{epoch}")


if __name__ == "__main__":
    main()
