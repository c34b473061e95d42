"""CI runs what the README tells a new user to run: the same test command, in a fresh virtual
environment, with the pinned versions."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The commands of the README's first code block."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command_unchanged_in_a_fresh_environment():
    quickstart, tests = readme_commands()[:2]
    assert quickstart.endswith("rim quickstart --out runs/quickstart")
    assert tests.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci
    before = ci[: ci.index(tests)]
    assert "python3 -m venv .venv-ci" in before and "source .venv-ci/bin/activate" in before
    assert before.index("python3 -m venv .venv-ci") > before.index("rm -rf .venv-ci")


def test_the_readmes_install_uses_the_pinned_versions():
    pins = {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(
            r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / "requirements" / "dev.txt").read_text(), re.M
        )
    }
    assert pins["torch"] == "2.13.0"  # the release, not a local build tag such as +cpu
    for name in ("transformers", "accelerate", "peft", "pytest", "pydantic", "datasets"):
        assert name in pins, name
    for command in readme_commands()[:2]:
        assert command.startswith('pip install -c requirements/dev.txt -e ".[dev]" && ')
