"""The shape of the package: folders that are layers, checked by import-linter (lazy imports
included), small files, methods whose every setting lives in their own settings type, a registry
that is the only list of methods."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rim.common.errors import RimInputError
from rim.config import Config, StageConfig, TrainerConfig, load_config
from rim.methods import METHODS, SegmentMethod, make_method
from rim.methods.base import SpecialIds

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 300


ROOT = SRC.parent
LAYERS = [
    "cli",
    "api",
    "bench",
    "training",
    "analysis",
    "inference",
    "models",
    "config",
    "methods",
    "core",
    "data",
    "common",
]


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    """import-linter on the contracts in pyproject.toml (or the config named in `args`)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layers_and_contracts_of_pyproject_hold():
    """The folders are the layers: each imports only from those below it (lazy imports too)."""
    done = lint_imports()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"Contracts: 3 kept, 0 broken", done.stdout)
    packages = sorted(p.name for p in (SRC / "rim").iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert packages == sorted(LAYERS)  # every subpackage is in a layer, and only these


def test_a_broken_layer_would_be_reported(tmp_path):
    """The check is real: a contract the code breaks (common above cli) is reported as broken."""
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_package = rim\n\n[importlinter:contract:upside-down]\n"
        "name = upside down\ntype = layers\nlayers =\n    rim.common\n    rim.cli\n"
    )
    done = lint_imports("--config", str(config))
    assert done.returncode == 1
    assert "upside down BROKEN" in done.stdout and "rim.common" in done.stdout


def test_no_source_file_is_over_300_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


SPECIAL = SpecialIds(open=2, memory=3, close=4, eos=1, pad=0)


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_owns_its_settings(name):
    cls = METHODS[name]
    assert cls.Config.model_fields["name"].default == name
    method = make_method(name, SPECIAL)
    assert method.name == name and method.config == cls.Config()
    sections = {k for k, f in TrainerConfig.model_fields.items() if f.annotation is StageConfig}
    assert method.stages and all(method.settings(s) in sections for s in method.stages)
    assert method.blocks == getattr(method.config, "blocks", 0)
    cfg = load_config(None, [f"method.name={name}"])
    assert type(cfg.method) is cls.Config


def test_a_setting_of_another_method_is_rejected_with_the_known_keys():
    with pytest.raises(RimInputError, match=r"unknown config key 'method.blocks' \(known: name\)"):
        load_config(None, ["method={name: nocot, blocks: 4}"])
    with pytest.raises(RimInputError, match="'method.latent_stages'.*known: block_size, blocks"):
        load_config(None, ["method.latent_stages=2"])  # the default method is rim


def test_a_new_method_is_one_class_and_one_registry_line(monkeypatch):
    """What a new method needs: a settings class with a literal name and a method class."""
    from typing import Literal

    from rim.methods import MethodConfig
    from rim.methods.sft import NoCoT

    class EchoConfig(MethodConfig):
        name: Literal["echo"] = "echo"
        repeat: int = 2

    class Echo(NoCoT):
        Config = EchoConfig

    monkeypatch.setitem(METHODS, "echo", Echo)
    method = make_method("echo", SPECIAL, repeat=3)
    assert isinstance(method, SegmentMethod) and method.config.repeat == 3
    with pytest.raises(RimInputError, match="'method.repat'"):
        make_method("echo", SPECIAL, repat=3)


def test_the_config_schema_describes_every_field():
    from rim.cli.flags import settings_rows

    rows = list(settings_rows(Config))
    keys = [r[0] for r in rows]
    assert {
        "trainer.stage1.lr",
        "model.dtype",
        "data.checker",
        "method.blocks",
        "method.latent_stages",
    } <= set(keys)
    undocumented = [r[0] for r in rows if r[1] != "section" and not r[3]]
    assert undocumented == []
