"""The habits of a Python library, checked on every run: ruff's rules and its formatting hold for
the package, the tests and the benchmarks (pyproject.toml), and mypy finds no type error in the
package at the level pyproject.toml sets ([tool.mypy]). The import contracts are checked in
tests/test_structure.py."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["src", "tests", "bench"]


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_ruff_check_is_clean():
    done = run("ruff", "check", "--no-cache", *PATHS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_leaves_every_file_as_it_is():
    done = run("ruff", "format", "--check", "--no-cache", *PATHS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_no_type_error_in_the_package(tmp_path):
    assert (ROOT / "src" / "rim" / "py.typed").is_file()  # users' type checkers read rim's hints
    done = run("mypy", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout
