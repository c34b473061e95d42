"""What answers at once: `--help`, `rim config` and argument errors import neither torch nor
transformers (seconds at start-up); output to a file or a closed pipe; help without repeats."""

import argparse
import json
import re
import subprocess
import sys

from rim.cli import build_parser, main
from rim.cli.flags import settings_rows
from rim.config import Config

HEAVY = ("torch", "transformers", "accelerate", "peft", "datasets")

PROBE = """
import contextlib, io, json, sys
import rim.cli
rim.cli.build_parser()
loaded = {"parser": [m for m in HEAVY if m in sys.modules]}
for args in (["--help"], ["train", "--help"], ["bench", "latency", "--help"], ["config"],
             ["train"], ["eval", "--batch-size", "0", "r"], ["data", "stats", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            rim.cli.main(args)
        except SystemExit:
            pass
    loaded[" ".join(args)] = [m for m in HEAVY if m in sys.modules]
print(json.dumps(loaded))
"""


def test_help_config_and_argument_errors_import_neither_torch_nor_transformers():
    proc = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(loaded) == 8
    assert loaded == {key: [] for key in loaded}


def test_rim_config_off_a_terminal_prints_one_plain_row_per_setting(capsys):
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "key\ttype\tdefault\thelp"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == len(list(settings_rows(Config)))
    assert all(len(row) == 4 for row in rows)
    scratch = next(row for row in rows if row[0] == "model.scratch")
    assert '"model_type": "gpt2"' in scratch[2] and "not merged" in scratch[3]  # not wrapped
    assert not any("│" in line or "━" in line for line in lines)


def test_a_closed_pipe_ends_quietly():
    for args in (["config"], ["config", "--json"], ["--help"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rim.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        proc.stdout.close()  # as `rim config | head -0`: the reader is gone before rim writes
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) in (0, 141), args
        assert err == "", (args, err)


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_help_shows_each_default_once():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 15
    for parser in parsers:
        text = " ".join(parser.format_help().split())
        assert not re.search(r"\(default[^()]*\) \(default", text), parser.prog
        assert "(default: None)" not in text and "(default: False)" not in text, parser.prog
    data_generate = next(p for p in parsers if p.prog.endswith("data generate"))
    assert " ".join(data_generate.format_help().split()).count("(default 0)") == 1


def test_the_settings_registry_matches_the_methods():
    """Each method's settings load without torch (`rim.methods.settings`); the two registries
    name the same methods in the same order, each class's `Config` its settings."""
    from rim.methods import METHODS
    from rim.methods.settings import METHOD_CONFIGS

    assert list(METHODS) == list(METHOD_CONFIGS)
    assert all(METHODS[name].Config is METHOD_CONFIGS[name] for name in METHODS)
