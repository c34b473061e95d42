"""The final model loads with plain transformers (no rim import) and answers like `rim infer`."""

import json
import subprocess
import sys

from rim.cli import main

PLAIN = r"""
import json, sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
model_dir, questions = Path(sys.argv[1]), json.loads(sys.argv[2])
info = json.loads((model_dir / "rim.json").read_text())
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
out = []
for q in questions:
    enc = tok(q + info["prompt_suffix"], return_tensors="pt")
    gen = model.generate(**enc, max_new_tokens=8, do_sample=False,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    out.append(tok.decode(gen[0, enc.input_ids.shape[1]:], skip_special_tokens=True).strip())
assert "rim" not in sys.modules
print(json.dumps(out))
"""


def test_plain_transformers_gives_the_same_answers_as_rim_infer(trained_run, capsys):
    run, _ = trained_run
    questions = ["3 +4 ?", "9 +9 ?", "0 +1 ?", "5 +7 ?"]
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN, str(run / "model"), json.dumps(questions)],
        capture_output=True,
        text=True,
        check=True,
    )
    plain = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = []
    for q in questions:
        assert main(["infer", str(run), q]) == 0
        ours.append(capsys.readouterr().out.strip())
    assert plain == ours
    assert sum(a == str((int(q[0]) + int(q[3])) % 10) for q, a in zip(questions, ours)) >= 1


def test_infer_every_block_prints_one_answer_per_block(trained_run, capsys):
    run, _ = trained_run
    assert main(["infer", str(run), "3 +4 ?", "--every-block"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["after block 1", "after block 2"]


def test_eval_json_reports_accuracy(trained_run, capsys):
    run, result = trained_run
    data = run.parent / "test.jsonl"
    assert main(["eval", str(run), "--data", str(data), "--json", "--limit", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["accuracy"] <= 1
    assert report["n"] == 50
    assert 0 <= report["unparsable"] <= 1
    assert len(report["per_block"]) == 2
    assert report["ttft_ms"] > 0
