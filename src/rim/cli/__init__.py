"""The command line: `rim` and its subcommands. `rim.cli.parser` builds the parser and runs a
command, `rim.cli.commands` holds what each command does, the others one command group each."""

from rim.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
