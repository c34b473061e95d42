"""Offline, a dry run of a hub model that is not cached stops at once with one line naming it,
instead of retrying the hub for half a minute."""

import os
import subprocess
import sys
import time

import pytest
from huggingface_hub import constants

from rim.models import hub

MISSING = "rim-tests/no-such-model-cached"


@pytest.fixture
def unreachable_hub(monkeypatch):
    """A hub at a local port nobody listens on (the connection is refused at once)."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    hub._no_connection.cache_clear()
    yield
    hub._no_connection.cache_clear()


def test_an_unreachable_hub_is_told_at_once(unreachable_hub):
    start = time.monotonic()
    reason = hub.hub_unreachable()
    assert reason is not None and "127.0.0.1:9" in reason
    assert time.monotonic() - start < hub.TIMEOUT_S + 1


def test_offline_mode_needs_no_connection_check(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.hub_unreachable() == "offline mode is set (HF_HUB_OFFLINE)"


def test_a_model_neither_reachable_nor_cached_fails_at_once(unreachable_hub, tmp_path, monkeypatch):
    import transformers

    asked = []
    real = transformers.AutoConfig.from_pretrained

    def spy(source, **options):
        asked.append(options.get("local_files_only", False))
        return real(source, **options)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(
        OSError, match=f"not in the local Hugging Face cache.*hf download {MISSING} config.json"
    ) as err:
        hub.pretrained_config(MISSING)
    assert time.monotonic() - start < 10
    assert asked == [True]  # only the local cache was asked, never the hub
    assert len(str(err.value).splitlines()) == 1


def test_dry_run_with_hf_hub_offline_is_one_line_naming_the_model(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"question": "1 ?", "steps": ["1"], "answer": "1"}\n')
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {{name_or_path: {MISSING}}}\ndata: {{train: {train}}}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [sys.executable, "-m", "rim.cli", "train", str(config), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        f"error: {MISSING}: cannot read the model's config: not in the local Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE" in lines[0] and "Retrying" not in proc.stderr
