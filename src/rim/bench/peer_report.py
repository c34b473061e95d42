"""The results of `rim bench peers`: the headline ratios, peers.json, peers.md with every table,
peers.png."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rim.bench import report
from rim.bench.report import Column, fixed

if TYPE_CHECKING:
    from rich.console import Console


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """The headline ratios (rim over the peer; > 1 is rim faster)."""
    out: dict[str, float] = {}
    if "training" in result:
        out["training_speedup"] = result["training"]["speedup"]
    rows = result.get("inference", [])

    def find(impl: str, method: str, batch: int) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if r["implementation"].startswith(impl) and r["method"] == method and r["batch"] == batch
            ),
            None,
        )

    official = find("official", "coconut", 1)
    if official:
        for method in ("coconut", "rim", "nocot"):
            for row in (r for r in rows if r["implementation"] == "rim" and r["method"] == method):
                out[f"{method}_b{row['batch']}_throughput_x"] = (
                    row["answers_per_s"] / official["answers_per_s"]
                )
                out[f"{method}_b{row['batch']}_ttft_x"] = official["ttft_ms"] / row["ttft_ms"]
    return out


EQUALITY_COLUMNS = [
    Column("c", "c"),
    Column("stage", "rim stage"),
    Column("peer_stage", "peer stage"),
    Column("supervised", "supervised tokens", fixed(0)),
    Column("loss_diff", "|loss diff|", lambda v: f"{v:.1e}"),
    Column("logits_diff", "max |logits diff|", lambda v: "shape differs" if v is None else f"{v:.1e}"),
    Column("logits_max", "max |logit|", lambda v: f"{v:.1f}"),
    Column("grad_diff", "max |grad diff|", lambda v: f"{v:.1e}"),
    Column("grad_max", "max |grad|", lambda v: f"{v:.1e}"),
    Column("equal", "equal (1e-5 relative)", lambda v: "yes" if v else "NO"),
]
CODI_COLUMNS = [
    Column("rows", "problems"),
    Column("loss_rim", "loss", fixed(4)),
    Column("loss_diff", "|loss diff|", lambda v: f"{v:.1e}"),
    Column("student_diff", "|student CE diff|", lambda v: f"{v:.1e}"),
    Column("distill_diff", "|distillation diff|", lambda v: f"{v:.1e}"),
    Column("teacher_diff", "|teacher CE diff|", lambda v: f"{v:.1e}"),
    Column("grad_diff", "max |grad diff|", lambda v: f"{v:.1e}"),
    Column("grad_max", "max |grad|", lambda v: f"{v:.1e}"),
    Column("equal", "equal", lambda v: "yes" if v else "NO"),
]
INFERENCE_COLUMNS = [
    Column("implementation", "code"),
    Column("method", "method"),
    Column("batch", "batch", fixed(0)),
    Column("ttft_ms", "first token ms", fixed(2)),
    Column("answers_per_s", "answers/s", fixed(1)),
    Column("tokens", "tokens/answer", fixed(1)),
]


def write(result: dict[str, Any], out: Path, console: Console | None) -> None:
    """peers.json, peers.md (every table) and peers.png (speed)."""
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "peers.json", result)
    theirs, checkout, env = result["peer_side"]["versions"], result["checkout"], result["environment"]
    parts = [
        f"# rim beside the official {result['peer']} code\n",
        f"Peer: `{checkout['path']}` at commit `{checkout['commit']}`, run by Python {theirs['python']} "
        f"with torch {theirs['torch']} and transformers {theirs['transformers']}; rim with "
        f"torch {env.get('torch')} and transformers {env.get('transformers')}. "
        f"Model: {result['model']}. Device: {env.get('cpu', 'cpu')}.\n",
    ]
    if "equality" in result:
        parts += [
            "## Equality (fp32, eval mode, same weights and batch)\n\nEqual: every difference within "
            "1e-5 of the largest magnitude of its kind (the loss, any logit, any gradient entry; "
            "absolute below 1).\n",
            report.markdown_table(result["equality"], EQUALITY_COLUMNS),
        ]
    if "icot" in result:
        parts.append(icot_section(result["icot"]))
    if "codi" in result:
        parts += [
            "## CODI: the official loss terms on the official batches\n\n"
            f"`{result['codi']['file']}`, first {result['codi']['examples']} problems, official options "
            f"`{result['codi']['args']}`; each problem alone, then the problems whose questions share the "
            "most common length in one batch. Equal: every term and gradient within 1e-5 of its largest "
            "magnitude (absolute below 1).\n",
            report.markdown_table(result["codi"]["cases"], CODI_COLUMNS),
        ]
    if "generation" in result:
        g = result["generation"]
        parts.append(
            f"## Greedy generation\n\n{g['same_batch1']}/{g['questions']} answers identical at batch 1, "
            f"{g['same_batched']}/{g['questions']} with rim batched, after {g['thoughts']} thoughts.\n"
        )
    if "training" in result and "loop" in result["training"]:  # iCoT-SI, CODI
        t = result["training"]
        parts.append(
            f"## Training step\n\n{t['loop']}: official {t['peer_examples_per_s']:.1f} examples/s "
            f"({t['peer_s_per_step']:.3f} s/step), rim {t['rim_examples_per_s']:.1f} examples/s "
            f"({t['rim_s_per_step']:.3f} s/step): rim {t['speedup']:.2f}x. Medians over "
            f"{len(t['peer_s_repeats'])} official and {len(t['rim_s_repeats'])} rim steps.\n"
        )
    elif "training" in result:
        t = result["training"]
        parts.append(
            f"## Training step\n\n{t['stage']} ({t['thoughts']} thoughts), batch {t['batch']}: official "
            f"{t['peer_examples_per_s']:.1f} examples/s, rim {t['rim_examples_per_s']:.1f} examples/s: rim "
            f"{t['speedup']:.2f}x. The two loss trajectories (same weights, batches and AdamW, no "
            f"dropout): first loss {t['first_loss_diff']:.1e} apart, at most {t['loss_diff_max']:.1e} "
            "later (AdamW's normalised steps amplify float rounding in near-zero gradients).\n"
        )
        if "rim_parts_s" in t:
            p = t["rim_parts_s"]
            parts.append(
                f"Where rim's step goes (median s): collate {p['collate']:.4f}, forward + backward "
                f"{p['forward_backward']:.4f}, optimizer {p['optimizer']:.4f}. The one-pass floor (the same "
                f"token ids in one causal pass, head at the same positions) takes "
                f"{t['floor_forward_backward_s']:.4f} s forward + backward: rim's thought passes cost "
                f"{t['rim_over_floor']:.2f}x it.\n"
            )
    if "inference" in result:
        parts += ["## Inference\n", report.markdown_table(result["inference"], INFERENCE_COLUMNS)]
    if result.get("loaders"):
        parts.append("## Data loaders\n")
        parts += [
            f"- `{r['file']}`: official {r['peer_examples']} examples, rim {r['rim_examples']}, "
            f"identical {r['same']}, "
            f"empty CoT (one empty step in the official loader, none in rim) {r['empty_cot']}, "
            f"other differences {r['other_differences']}"
            + ("" if r["first_difference"] is None else f"; first difference: `{r['first_difference']}`")
            + "\n"
            for r in result["loaders"]
        ]
    if result["ratios"]:
        parts.append("## Ratios (rim over the official code)\n")
        parts += [f"- {k}: {v:.2f}\n" for k, v in result["ratios"].items()]
    image = plot(result, out / "peers.png")
    if image:
        parts.append(f"![speed]({image.name})\n")
    (out / "peers.md").write_text("\n".join(parts), encoding="utf-8")
    if "equality" in result:
        report.print_table(console, "equality with the official code", result["equality"], EQUALITY_COLUMNS)
    if "inference" in result:
        report.print_table(console, "inference", result["inference"], INFERENCE_COLUMNS)
    report.say(console, f"results in {out}/peers.json, peers.md" + (", peers.png" if image else ""))


def icot_section(r: dict[str, Any]) -> str:
    """The iCoT-SI checks in words (`rim.bench.peer_icot_checks`)."""
    loaders, schedule, loss, resets = r["loaders"], r["schedule"], r["loss"], r["resets"]
    return (
        f"## iCoT-SI: a recorded official training run\n\n`{r['file']}`, official options "
        f"`{r['args']}`: {r['steps']} steps, {r['steps_per_epoch']} per epoch.\n\n"
        f"- Chains read: {loaders['same']} identical to the official tokens, {loaders['trailing_space']} "
        f"identical but for the official chain's last token (a lone space before its EOS separator), "
        f"{loaders['different']} different"
        + ("" if loaders["first_difference"] is None else f" (first: `{loaders['first_difference']}`)")
        + ".\n"
        f"- Chain tokens left after removal, every step and row, with the official smoothing draw: "
        f"{schedule['equal']} of {schedule['rows']} equal ({schedule['with_offset']} rows drew an "
        "offset above 0)"
        + (
            ""
            if schedule["first_difference"] is None
            else f" (first difference: `{schedule['first_difference']}`)"
        )
        + ".\n"
        f"- Offset distribution: max |difference| {r['distribution_diff']:.1e}.\n"
        f"- Optimizer resets before steps: official {resets['official']}, rim {resets['rim']}; "
        f"skipped by the official code after a batch with every chain removed: "
        f"{resets['skipped_after_all_removed']}; unexplained: {resets['unexplained']}.\n"
        f"- Loss on the same token ids and removals, every step (same weights): ids identical "
        f"{'yes' if loss['ids_equal'] else 'NO'}, max |loss diff| {loss['loss_diff']:.1e} (largest loss "
        f"{loss['loss_max']:.2f}); gradients at steps {loss['grad_steps']}: max |diff| "
        f"{loss['grad_diff']:.1e} (largest {loss['grad_max']:.1e}); "
        f"{'equal' if loss['equal'] else 'NOT equal'} (1e-5 relative).\n"
    )


def plot(result: dict[str, Any], path: Path) -> Path | None:
    """Bars: examples/s of a training step and (Coconut) answers/s at batch 1, official against rim."""
    plt = report.pyplot()
    if plt is None or "training" not in result:
        return None
    t = result["training"]
    groups, official, ours = ["training examples/s"], [t["peer_examples_per_s"]], [t["rim_examples_per_s"]]
    if "inference" in result:
        inference = {(r["implementation"] == "rim", r["method"], r["batch"]): r for r in result["inference"]}
        groups.append("Coconut answers/s (batch 1)")
        official.append(inference[(False, "coconut", 1)]["answers_per_s"])
        ours.append(inference.get((True, "coconut", 1), {}).get("answers_per_s", float("nan")))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    report.grouped_bars(ax, groups, {"official": official, "rim": ours})
    ax.set_ylabel("per second")
    ax.legend()
    return report.save_figure(fig, path)
