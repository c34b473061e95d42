"""What each `rim` command does (the parser and entry point are in `rim.cli`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from rim.common.errors import RimInputError
from rim.common.fileio import read_stdin, read_text
from rim.common.outputs import check_output_file
from rim.common.progress import console, err_console


def cmd_train(args: argparse.Namespace) -> int:
    from rim.common.progress import Reporter
    from rim.config import load_config
    from rim.training.run import run_training

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from rim.cli.dryrun import dry_run, plan_table

        plan = dry_run(cfg)
        if args.json:
            print(json.dumps(plan, indent=2))
        else:
            console.print(plan_table(plan))
        return 0
    if args.out is None:
        raise RimInputError("--out is required (the run directory to create)", source="command line")
    result = run_training(
        cfg, args.out, Reporter(bars=False if args.no_progress else None), resume=args.resume
    )
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0
    for split, data in (("valid", cfg.data.eval), ("test", cfg.data.test)):
        if split in result:
            console.print(eval_table(result[split], title=f"{cfg.method.name} on {data} ({split})"))
    console.print(f"model saved to {Path(args.out) / 'model'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from rim.data.sources import load_records
    from rim.inference.evaluate import evaluate
    from rim.inference.infer import load_run

    if args.save_predictions:  # refused before any work, as `rim data generate --out`
        check_output_file(args.save_predictions, args.force)
    data = args.data or _run_eval_data(Path(args.run))
    records = load_records(data)[: args.limit]
    run = load_run(args.run)
    checker = args.checker or run.info.checker
    passes = max(run.blocks, 1) if not args.final_only else 1
    with Progress(console=err_console, disable=args.json, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(records) * passes)
        result = evaluate(
            run,
            records,
            checker,
            batch_size=args.batch_size,
            per_block=not args.final_only,
            one_pass=not args.separate_passes,
            progress=lambda n: bar.advance(task, n),
        )
    if args.save_predictions:
        _save_predictions(Path(args.save_predictions), records, result)
    if args.select == "probe" or args.adaptive:
        from rim.cli.probe import probe_eval

        result.update(
            probe_eval(
                run,
                args.run,
                records,
                checker,
                args.select == "probe",
                args.adaptive,
                Path(args.run) / "adaptive",
                result.get("block_predictions"),
            )
        )
    shown = {
        k: v
        for k, v in result.items()
        if k not in ("predictions", "correct", "block_predictions", "adaptive")
    }
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        console.print(eval_table(result, title=f"{args.run} on {data}"))
    return 0


def _run_eval_data(run: Path) -> str:
    """The evaluation data a run was trained with (`data.eval` of its config.yaml)."""
    import yaml

    saved = run / "config.yaml"
    data = (yaml.safe_load(saved.read_text()) or {}).get("data", {}) if saved.is_file() else {}
    if not data.get("eval"):
        raise RimInputError("give --data: the run names no evaluation data (data.eval)", source=str(run))
    return data["eval"]


def _save_predictions(path: Path, records: list, result: dict) -> None:
    """One JSON line per record: question, gold, prediction, correct, answer after each block."""
    from rim.data.writers import atomic_write_text

    blocks = result.get("block_predictions") or [None] * len(records)
    lines = [
        json.dumps(
            {
                "question": r.question,
                "gold": r.answer,
                "prediction": pred,
                "correct": ok,
                **({"per_block": per} if per is not None else {}),
            }
        )
        for r, pred, ok, per in zip(records, result["predictions"], result["correct"], blocks)
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    err_console.print(f"predictions written to {path}", markup=False, highlight=False)


def cmd_infer(args: argparse.Namespace) -> int:
    from rim.inference.infer import load_run

    if (args.question is None) == (args.file is None):
        raise RimInputError(
            "give a question or --file (one question per line; - for stdin)", source="command line"
        )
    numbered = _read_questions(args.file) if args.file is not None else []
    run = load_run(args.run)
    if args.file is not None:
        for where, question in numbered:
            run.check_fits(question, where)
        questions = [q for _, q in numbered]
    else:
        run.check_fits(args.question)
        questions = [args.question]
    if args.every_block and run.blocks:
        for row in run.answers_every_block(questions, batch_size=args.batch_size):
            print(
                "\t".join(row)
                if args.file is not None
                else "\n".join(f"after block {k}: {a}" for k, a in enumerate(row, 1))
            )
    else:
        for answer in run.answers(questions, batch_size=args.batch_size):
            print(answer)
    return 0


def _read_questions(file: str) -> list[tuple[str, str]]:
    """The questions of `rim infer --file` (- for standard input), one per line, each with
    where it is (FILE:LINE). Answer N is printed for line N, so a blank line is refused (it
    would shift every later answer), and so is a file without questions."""
    source = "<stdin>" if file == "-" else file
    text = read_stdin() if file == "-" else _read_text(file)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise RimInputError("empty: no questions to answer (one question per line)", source=source)
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise RimInputError(
                "blank question: answer N is printed for line N, so every "
                "line must hold a question (remove the blank line)",
                source=source,
                line=i,
            )
    return [(f"{source}:{i}", line.strip()) for i, line in enumerate(lines, 1)]


def _read_text(path: str) -> str:
    if not Path(path).is_file():
        raise RimInputError("file not found", source=path)
    return read_text(path)


def cmd_explain(args: argparse.Namespace) -> int:
    from rim.analysis.explain import (
        CAVEAT,
        NOTE_0,
        block_label,
        explain_table,
        readouts,
        stage1_model,
        step_match,
    )
    from rim.inference.infer import load_run

    if (args.question is None) == (args.data is None):
        raise RimInputError("give a question or --data", source="command line")
    final, stage1 = load_run(args.run), stage1_model(args.run)
    if args.question is not None:
        (steps,), (answers,) = readouts(stage1, [args.question]), readouts(final, [args.question])
        console.print(explain_table(args.question, steps, answers))
        return 0
    from rim.data.sources import load_records

    result = step_match(stage1, final, load_records(args.data)[: args.limit])
    table = Table(title=f"read-out = gold step, per block ({result['n']} questions)", caption=NOTE_0 + CAVEAT)
    for column in ("after block", "after stage 1", "after stage 2"):
        table.add_column(column, justify="right")
    for k, (one, two) in enumerate(zip(result["after_stage1"], result["after_stage2"])):
        table.add_row(block_label(k), *("-" if v is None else f"{100 * v:.1f}%" for v in (one, two)))
    console.print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rim.inference.export import export

    console.print(f"standalone model written to {export(args.run, args.out)}", markup=False)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from rim.cli.quickstart import quickstart

    quickstart(Path(args.out), console, seed=args.seed)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from rim.cli.flags import settings_rows
    from rim.config import Config, load_config

    if args.config is not None:
        cfg = load_config(args.config, args.overrides)
        print(json.dumps(cfg.to_dict(), indent=2) if args.json else _yaml(cfg.to_dict()), end="")
        return 0
    if args.json:
        print(json.dumps(Config.model_json_schema(), indent=2))
        return 0
    if not console.is_terminal:  # a file or a pipe: one plain row per setting, for grep and cut
        print("key\ttype\tdefault\thelp")
        for row in settings_rows(Config):
            print("\t".join(" ".join(cell.split()) for cell in row))
        return 0
    table = Table(title="rim train settings (set in YAML or as key=value)")
    table.add_column("key", no_wrap=True, min_width=len("trainer.coconut_final.optimizer_reset"))
    table.add_column("type", overflow="fold", max_width=18)
    table.add_column("default", overflow="fold", max_width=18)
    table.add_column("help", overflow="fold", ratio=1)
    for row in settings_rows(Config):
        table.add_row(*row)
    console.print(table)
    return 0


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def eval_table(result: dict, title: str) -> Table:
    """A rich table of an evaluation result."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("questions", str(result["n"]))
    table.add_row("final-block accuracy", f"{100 * result['accuracy']:.1f}%")
    if "digit_accuracy" in result:
        table.add_row("  digits right", f"{100 * result['digit_accuracy']:.1f}%")
    if "any_block_accuracy" in result:
        table.add_row("any-block accuracy", f"{100 * result['any_block_accuracy']:.1f}%")
        for k, acc in enumerate(result["per_block"], start=1):
            table.add_row(f"  after block {k}", f"{100 * acc:.1f}%")
    if "unparsable" in result:
        table.add_row("no parsable answer", f"{100 * result['unparsable']:.1f}%")
    if "probe_selected_accuracy" in result:
        table.add_row("probe-selected accuracy", f"{100 * result['probe_selected_accuracy']:.1f}%")
    table.add_row("latency per question (batched)", f"{result['latency_ms_per_question']:.2f} ms")
    table.add_row("time to first token (batch 1)", f"{result['ttft_ms']:.2f} ms")
    return table
