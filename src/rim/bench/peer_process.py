"""A peer's official code in a subprocess of its own Python (`rim bench peers`): start the peer
script (e.g. `rim/bench/peer_coconut.py`) with that interpreter, send JSON requests, read JSON
replies. The peer's virtual environment may pin other versions of torch and transformers than
rim's; nothing of rim is imported there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rim.common.errors import RimInputError, RimRunError

SCRIPTS = {
    "coconut": Path(__file__).with_name("peer_coconut.py"),
    "icot": Path(__file__).with_name("peer_icot.py"),
    "codi": Path(__file__).with_name("peer_codi.py"),
}
"""The peer script of each peer method."""

CHECKOUT_FILES = {
    "coconut": ("coconut.py", "dataset.py"),
    "icot": ("src/train.py", "src/model.py", "src/data.py", "src/utils.py", "src/configuration_model.py"),
    "codi": ("train.py", "src/model.py"),
}
"""Files a checkout of each peer must hold (the modules its script imports)."""


def check_checkout(peer: str, checkout: str | Path) -> Path:
    """The checkout folder of `peer`, or a one-line error naming what is missing."""
    path = Path(checkout)
    missing = [f for f in CHECKOUT_FILES[peer] if not (path / f).is_file()]
    if missing:
        raise RimInputError(
            f"not a checkout of the official {peer} code (missing {', '.join(missing)}); "
            "clone it as bench/README.md says",
            source=str(path),
        )
    return path.resolve()


class PeerProcess:
    """The peer script of `peer` running under `python` (default: this interpreter)."""

    def __init__(self, peer: str, python: str | None = None) -> None:
        self.peer = peer
        try:
            self.proc = subprocess.Popen(
                [python or sys.executable, str(SCRIPTS[peer])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
                env={
                    **os.environ,
                    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                    "TOKENIZERS_PARALLELISM": "false",
                    # rim's side runs on the CPU: so does the peer's, whose code (iCoT-SI's
                    # main(), CODI's model) moves to a GPU wherever it sees one
                    "CUDA_VISIBLE_DEVICES": "",
                },
            )
        except OSError as exc:
            raise RimInputError(f"cannot run the peer's Python: {exc.strerror}", source=str(python)) from exc

    def call(self, cmd: str, **request: Any) -> dict[str, Any]:
        """Send one request; its reply, or `RimRunError` with the peer's traceback."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **request}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            line = ""
        else:
            line = self.proc.stdout.readline()
        if not line:
            raise RimRunError(f"the {self.peer} peer process ended during {cmd!r} (its error is above)")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise RimRunError(
                f"the {self.peer} peer failed in {cmd!r}: {reply['error']}\n{reply['traceback']}"
            )
        return reply

    def close(self) -> None:
        """Ask the script to quit and wait for it (kill it after a minute)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
