"""The request loop of a peer script (`peer_coconut.py`, `peer_icot.py`): JSON requests on stdin,
one JSON reply per line on the original stdout, the peer's own prints on stderr. Standard
library only: it runs under the peer's Python, where rim is not installed."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable


def serve(commands: dict[str, Callable[[dict], dict]]) -> None:
    """Serve requests until `quit` or end of input; an exception becomes an error reply."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the peer's prints and progress bars go to stderr, not into the replies
    sys.stdout = sys.stderr
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        try:
            reply = {"ok": True, **commands[req["cmd"]](req)}
        except Exception as exc:  # the client raises it with the peer's traceback
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        replies.write(json.dumps(reply) + "\n")
