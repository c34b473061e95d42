"""`rim explain`: the stage-1 step read-out and the final answer after each block."""

from rim.analysis.explain import readouts, stage1_model, step_match
from rim.cli import main
from rim.data.readers import read_records
from rim.inference.infer import load_run


def test_explain_one_question_shows_every_block_and_the_caveat(trained_run, capsys):
    run, _ = trained_run
    question = read_records(run.parent / "test.jsonl")[0].question
    assert main(["explain", str(run), question]) == 0
    out = capsys.readouterr().out
    assert "stage-1 read-out" in out and "faithful trace" in " ".join(out.split())
    assert "0 (question only)" in out  # block 0 says what it is, which rim eval does not have
    assert "read out from the question alone, before any memory block" in " ".join(out.split())
    rows = readouts(load_run(run, device="cpu"), [question])
    assert len(rows) == 1 and len(rows[0]) == 3  # after 0, 1 and 2 blocks


def test_step_match_per_block_after_each_stage(trained_run):
    run, _ = trained_run
    records = read_records(run.parent / "test.jsonl")[:20]
    result = step_match(stage1_model(run), load_run(run, device="cpu"), records)
    assert result["n"] == 20
    for key in ("after_stage1", "after_stage2"):
        assert len(result[key]) == 3
        assert all(v is None or 0 <= v <= 1 for v in result[key])
    # one move: after 0 blocks the step, after 1 block the answer; the stage-1 model was
    # trained on both, so it reads out its one step more often than chance (10%)
    assert result["after_stage1"][0] > 0.1


def test_block_0_is_labelled_as_the_question_alone():
    from rim.analysis.explain import block_label

    assert [block_label(k) for k in range(3)] == ["0 (question only)", "1", "2"]


def test_readme_export_snippet_prints_what_rim_infer_prints():
    """The exported model writes its answer after a space (`' 1'`); the README's snippet strips
    it, as tests/test_export.py does when it compares with `rim infer`."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = readme[readme.index('tok.apply_chat_template([{"role": "user"') :]
    snippet = snippet[: snippet.index("```")]
    assert "skip_special_tokens=True).strip())" in snippet
