"""One exception type for bad user input: the CLI prints it on one line and exits with code 2."""

from __future__ import annotations


class RimInputError(ValueError):
    """Bad user input (data file, config, model path). The message names the file and line or field."""

    def __init__(
        self, message: str, *, source: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")
        self.source = source
        self.line = line
        self.field = field
        """The dotted config field the error is about, if any."""


class RimRunError(RuntimeError):
    """A run that had to stop (a loss that is not finite): the CLI prints one line, exit 1."""


class RimStopped(RimRunError):
    """A run stopped by a signal after saving a checkpoint; `code` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
