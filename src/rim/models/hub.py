"""Whether the Hugging Face hub can answer, asked once and quickly: offline, a model's config comes
from the local cache or rim stops at once with one line, instead of huggingface_hub's retries
(about half a minute per file)."""

from __future__ import annotations

import functools
import socket
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

TIMEOUT_S = 2.0
"""How long a connection to the hub host (or its proxy) may take before the hub counts as
unreachable."""


def hub_unreachable(timeout: float = TIMEOUT_S) -> str | None:
    """Why the hub cannot be asked (offline mode is set, or its host, or the proxy for it, takes
    no connection within `timeout` seconds), or None when it can."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "offline mode is set (HF_HUB_OFFLINE)"
    return _no_connection(constants.ENDPOINT, timeout)


@functools.cache
def _no_connection(endpoint: str, timeout: float) -> str | None:
    url = urlparse(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or "", via.port or 80
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return f"no connection to {host}:{port}: {err.strerror or err}"


def pretrained_config(source: str, gguf_file: str | None = None) -> Any:
    """The transformers config of `source` (a local directory, or a hub name: from the hub, or
    from the local cache when the hub cannot be reached). A hub name neither reachable nor
    cached raises OSError at once, with one line saying what to do."""
    from transformers import AutoConfig

    if source.startswith((".", "/", "~")) or Path(source).exists():
        return AutoConfig.from_pretrained(source, gguf_file=gguf_file)
    reason = hub_unreachable()
    if reason is None:
        return AutoConfig.from_pretrained(source, gguf_file=gguf_file)
    try:
        return AutoConfig.from_pretrained(source, gguf_file=gguf_file, local_files_only=True)
    except OSError:
        raise OSError(
            f"not in the local Hugging Face cache and the hub cannot be reached "
            f"({reason}); fetch it once online (`hf download {source} config.json`) "
            "or set model.name_or_path to a local directory"
        ) from None
