"""Every Python block of README.md and docs/*.md runs (pytest-examples), so the documentation
cannot drift from the code. The blocks of one page run in order in one namespace, in a working
directory of tiny stand-ins: `openai-community/gpt2` is a local 2-layer GPT-2 (a local
directory wins over the hub), `runs/mult` a tiny trained run, `exported/mult` its export, and
`data/chain/` a few digit chains.
A block that cannot run there says why on its fence line: ```python test="skip" reason="..."."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import ARCHS, write_jsonl
from pytest_examples import CodeExample, EvalExample, find_examples

import rim
from rim.data.generators import generate
from rim.models.modeling import build_model, scratch_tokenizer

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[CodeExample]:
    return [ex for ex in find_examples(str(page)) if ex.prefix.split(" ", 1)[0] in ("py", "python")]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Iterator[Path]:
    """A working directory with the tiny model, run and export the pages name (one thread:
    tiny models are slower on more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("docs")
    records = [*generate("chain", 200, 0, ops=2), *generate("multiplication", 200, 0, digits=4)]
    tok = scratch_tokenizer([t for r in records for t in (r.question, *r.steps, r.answer)], 96)
    torch.manual_seed(0)
    gpt2 = root / "openai-community" / "gpt2"
    build_model(ARCHS["gpt2"], tok, max_length=160).save_pretrained(gpt2)
    tok.save_pretrained(gpt2)
    mult = [r for r in records if "*" in r.question][:64]
    trainer = rim.RiMTrainer(
        model=str(gpt2),
        train_dataset=mult,
        args=rim.RiMConfig(
            output_dir=str(root / "runs" / "mult"),
            blocks=2,
            batch_size=16,
            stage1={"steps": 2},
            stage2={"steps": 1},
            report_to=[],
            disable_tqdm=True,
        ),
    )
    trainer.train()
    trainer.export(root / "exported" / "mult")
    (root / "data" / "chain").mkdir(parents=True)
    for split, n, seed in (("train", 128, 0), ("test", 16, 1)):
        write_jsonl(
            root / "data" / "chain" / f"{split}.jsonl",
            [r.to_dict() for r in generate("chain", n, seed, ops=2)],
        )
    yield root
    torch.set_num_threads(threads)


def test_every_page_has_its_python_blocks_found():
    assert len(python_blocks(REPO / "README.md")) >= 3
    assert len(python_blocks(REPO / "docs" / "python.md")) >= 6
    readme = (REPO / "README.md").read_text()
    python_section = readme[readme.index("## From Python") :]
    assert python_section.split("```python", 1)[1].split("```")[0].count("rim.RiMTrainer(") == 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_python_blocks_of_a_page_run(page, stand_ins, monkeypatch, eval_example: EvalExample):
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python block")
    monkeypatch.chdir(stand_ins)
    namespace: dict = {}
    ran = 0
    for block in blocks:
        settings = block.prefix_settings()
        if settings.get("test") == "skip":
            assert settings.get("reason"), f"{page.name}:{block.start_line} skips without a reason"
            continue
        failed = None
        try:
            namespace = eval_example.run(block, module_globals=namespace)
        except Exception as err:  # pytest cannot format tracebacks through exec'd code
            failed = f"{page.name}:{block.start_line}: {type(err).__name__}: {err}"
        if failed:
            pytest.fail(failed)
        ran += 1
    assert ran > 0
