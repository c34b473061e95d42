import pytest

from rim.common.errors import RimInputError
from rim.config import load_config


def test_includes_merge_in_order_and_overrides_win(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "small.yaml").write_text(
        "model:\n  scratch: {model_type: llama, num_hidden_layers: 2}\n  vocab_size: 100\n"
    )
    (tmp_path / "run.yaml").write_text(
        "include: [model/small.yaml]\nmodel:\n  vocab_size: 200\ndata:\n  train: t.jsonl\n"
    )
    cfg = load_config(tmp_path / "run.yaml", ["trainer.stage1.lr=1e-4", "method.blocks=4"])
    assert cfg.model.scratch == {"model_type": "llama", "num_hidden_layers": 2}
    assert cfg.model.vocab_size == 200
    assert cfg.trainer.stage1.lr == 1e-4
    assert cfg.method.blocks == 4
    assert cfg.data.train == "t.jsonl"


@pytest.mark.parametrize(
    "override,message",
    [
        ("method.name=magic", "field 'method.name' must be one of"),
        ("data.checker=fuzzy", "field 'data.checker' must be one of"),
        ("method.blocks=0", "field 'method.blocks' must be at least 1"),
        ("trainer.stage2.warmup=2", "field 'trainer.stage2.warmup'"),
        ("trainer.batch_size=1.5", "field 'trainer.batch_size' must be int"),
        ("modle.dtype=float32", "unknown config key 'modle'"),
        ("trainer", "is not key=value"),
    ],
)
def test_bad_values_are_rejected_with_the_field_name(tmp_path, override, message):
    with pytest.raises(RimInputError, match=message):
        load_config(None, [override])


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  dtype: [unclosed\n")
    with pytest.raises(RimInputError, match=rf"{path}:\d+: malformed YAML"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(RimInputError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_training_configs_validate():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    paths = [
        *sorted((repo / "configs" / "examples").glob("*.yaml")),
        repo / "src" / "rim" / "configs" / "quickstart.yaml",
    ]
    assert len(paths) >= 3
    for path in paths:
        cfg = load_config(path)
        assert cfg.method.name in ("rim", "pause", "nocot", "cot", "coconut"), path


def test_rim_config_lists_every_setting_and_the_json_schema(capsys):
    import json

    from rim.cli import main

    assert main(["config"]) == 0
    listing = capsys.readouterr().out
    for key in ("trainer.stage2.dropout", "method.fade_start", "method.thoughts_per_step"):
        assert key in listing
    assert main(["config", "--json"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"model", "data", "method", "trainer"} <= set(schema["properties"])
    assert "discriminator" in json.dumps(schema["properties"]["method"])


def test_rim_config_resolves_a_file_with_overrides(tmp_path, capsys):
    import yaml

    from rim.cli import main

    (tmp_path / "run.yaml").write_text("method: {blocks: 3}\ntrainer: {mixed_precision: no}\n")
    assert main(["config", str(tmp_path / "run.yaml"), "trainer.seed=5"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["method"] == {
        "name": "rim",
        "blocks": 3,
        "block_size": 2,
        "fade_start": 0.0,
        "fade_end": 1.0,
    }
    assert resolved["trainer"]["seed"] == 5 and resolved["trainer"]["mixed_precision"] == "no"


def test_sections_merge_and_free_form_mappings_are_replaced(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "model: {scratch: {model_type: gpt2, n_layer: 4}, lora: {r: 8, alpha: 16}}\n"
        "trainer: {stage1: {lr: 0.01, steps: 5}}\n"
    )
    (tmp_path / "top.yaml").write_text(
        "include: base.yaml\nmodel: {scratch: {model_type: llama}, lora: {r: 4}}\n"
        "trainer: {stage1: {steps: 7}}\n"
    )
    cfg = load_config(tmp_path / "top.yaml", ["trainer.stage1={warmup: 0.1}"])
    assert cfg.model.scratch == {"model_type": "llama"} and cfg.model.lora == {"r": 4}
    assert (cfg.trainer.stage1.lr, cfg.trainer.stage1.steps) == (1e-3, None)  # replaced by the override
    cfg = load_config(tmp_path / "top.yaml")
    assert (cfg.trainer.stage1.lr, cfg.trainer.stage1.steps) == (0.01, 7)


def test_unknown_keys_list_the_known_ones():
    with pytest.raises(
        RimInputError,
        match=r"unknown config key 'trainer.stage1.stepz' "
        r"\(known: dropout, epochs, lr, optimizer_reset, schedule, steps, "
        r"warmup\)",
    ):
        load_config(None, ["trainer.stage1.stepz=3"])
