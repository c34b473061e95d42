"""`rim export`: plain transformers, without rim importable, answers through the chat template
and generation config exactly as `rim infer` does."""

import json
import subprocess
import sys
from pathlib import Path

from rim.cli import main
from rim.data.generators.chain import generate_chain
from rim.inference.infer import load_run

PLAIN = """
import json, sys
sys.modules["rim"] = None  # rim is not importable here
from transformers import AutoModelForCausalLM, AutoTokenizer
out, questions = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(out)
model = AutoModelForCausalLM.from_pretrained(out).eval()
answers = []
for q in questions:
    ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    gen = model.generate(**ids)
    answers.append(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
print(json.dumps(answers))
"""


def test_exported_model_answers_as_rim_infer(tmp_path):
    config = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(config),
                "--out",
                str(run),
                "trainer.stage1.steps=400",
                "trainer.stage2.steps=100",
                "trainer.save_every=null",
                "data.eval=null",
            ]
        )
        == 0
    )
    out = tmp_path / "exported"
    assert main(["export", str(run), str(out)]) == 0
    assert json.loads((out / "generation_config.json").read_text())["do_sample"] is False
    questions = [r.question for r in generate_chain(12, 3, ops=2)]
    expected = load_run(run, device="cpu").answers(questions)
    assert all(a.isdigit() for a in expected) and len(set(expected)) > 1  # real answers
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN, str(out), json.dumps(questions)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


def test_export_refuses_a_run_without_a_model(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a rim run" in err
    assert not (tmp_path / "out").exists()
