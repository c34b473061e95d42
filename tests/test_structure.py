"""The shape of the package: no import cycle (lazy imports included), small files, methods whose
every setting lives in their own settings type, a registry that is the only list of methods."""

import ast
from pathlib import Path

import pytest

from rim.config import Config, StageConfig, TrainerConfig, load_config
from rim.errors import RimInputError
from rim.methods import METHODS, SegmentMethod, make_method
from rim.methods.base import SpecialIds

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """rim module -> the rim modules it imports, anywhere in its body (lazy imports too)."""
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "rim.methods.rim" in graph["rim.methods"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_a_cycle_would_be_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_source_file_is_over_300_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
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
    from rim.settings_cli import settings_rows

    rows = list(settings_rows(Config))
    keys = [r[0] for r in rows]
    assert {"trainer.stage1.lr", "model.dtype", "data.checker", "method.blocks",
            "method.latent_stages"} <= set(keys)
    undocumented = [r[0] for r in rows if r[1] != "section" and not r[3]]
    assert undocumented == []
