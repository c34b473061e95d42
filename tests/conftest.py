import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
REPO = Path(__file__).resolve().parents[1]
MAX_WORKERS = 4  # each worker holds torch and the test models; more rarely pays on a CI machine

# Under pytest-xdist the cores are shared out between the workers (and the subprocesses they
# start), so that two workers on two cores do not each run two threads. Set before torch loads.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    _workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject.toml): one worker per core, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


# The files that take longest (a minute or more on two cores) start first, so that the workers
# do not end with one long file running alone; every other file keeps its place.
SLOW_FIRST = (
    "test_smollm2.py",
    "test_export.py",
    "test_lint.py",
    "test_peers.py",
    "test_bench.py",
    "test_distributed.py",
    "test_resume.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The published reference files: $RIM_SHARED_DATA, default ../shared/data from the repo."""
    path = Path(os.environ.get("RIM_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny RiM model trained briefly on one-step digit chains; shared by several tests."""
    from rim.common.progress import Reporter
    from rim.config import config_from_dict
    from rim.data.generators.chain import generate_chain
    from rim.training.run import run_training

    root = tmp_path_factory.mktemp("trained")
    for name, n, seed in (("train", 2000, 0), ("test", 200, 1)):
        rows = [r.to_dict() for r in generate_chain(n, seed, ops=1, moves=("+1", "+2", "+3"))]
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = config_from_dict(
        {
            "model": {
                "scratch": {"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 4},
                "vocab_size": 48,
                "max_length": 64,
            },
            "data": {"train": str(root / "train.jsonl"), "eval": str(root / "test.jsonl")},
            "method": {"name": "rim", "blocks": 2},
            "trainer": {
                "batch_size": 32,
                "log_every": 10,
                "stage1": {"steps": 150, "lr": 3e-3},
                "stage2": {"steps": 60, "lr": 1e-3, "dropout": 0.0},
            },
        }
    )
    result = run_training(cfg, root / "run", Reporter(enabled=False))
    return root / "run", result
