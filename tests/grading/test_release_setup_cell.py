"""The cells ``release`` adds to every student notebook, and the one repository URL they use."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from dlopt.grading import release, release_notebook
from dlopt.grading.setup_cell import SETUP_TAG, SUBMIT_NOTE, repository, setup_source

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
URL, BRANCH = CONFIG["url"], CONFIG["branch"]
STUDENT = sorted((ROOT / "exercises").glob("*.ipynb"))


def test_the_url_is_read_from_config():
    assert URL.startswith("https://")
    assert repository(ROOT) == (URL, BRANCH)
    assert repository(ROOT / "exercises" / "source" / "momentum.ipynb") == (URL, BRANCH)


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.stem)
def test_student_notebooks_start_with_the_note_and_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    first_md = next(c for c in nb.cells if c.cell_type == "markdown")
    assert SUBMIT_NOTE.strip() in first_md.source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert SETUP_TAG in first_code.metadata.get("tags", [])
    assert f'_url = "git+{URL}@{BRANCH}"' in first_code.source
    compile(first_code.source, path.name, "exec")  # valid Python


def test_release_is_idempotent_and_reproducible(tmp_path):
    source = ROOT / "exercises" / "source" / "momentum.ipynb"
    nb = nbformat.read(source, as_version=4)
    once = release_notebook(nb, (URL, BRANCH))
    twice = release_notebook(once, (URL, BRANCH))
    assert [c.source for c in twice.cells] == [c.source for c in once.cells]
    assert sum(SETUP_TAG in c.metadata.get("tags", []) for c in once.cells) == 1
    # the committed copy is what release writes, byte for byte
    written = release(source, tmp_path)
    assert written.read_text() == (ROOT / "exercises" / "momentum.ipynb").read_text()


def test_problem_sets_outside_the_book_get_a_cell_that_explains(tmp_path):
    source = ROOT / "exercises" / "source" / "momentum.ipynb"
    outside = tmp_path / "course" / "set1.ipynb"
    outside.parent.mkdir()
    outside.write_bytes(source.read_bytes())
    assert repository(outside) is None
    nb = nbformat.read(release(outside, tmp_path / "out"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    assert "ask your instructor" in cell.source and "pip" not in cell.source.split("raise")[0]


@pytest.mark.parametrize("bad", ['https://x/"; import os; "', "http://plain-http/repo",
                                 "https://x/a b", "git@github.com:x/y", "https://x/y@evil"])
def test_odd_urls_are_refused(bad):
    with pytest.raises(ValueError, match="not a plain https"):
        setup_source((bad, "main"))


@pytest.mark.parametrize("branch", ['main"; import os; "', "-rf", "a b"])
def test_odd_branches_are_refused(branch):
    with pytest.raises(ValueError, match="not a plain branch"):
        setup_source((URL, branch))


def test_extras_are_named_in_the_install():
    cell = setup_source((URL, BRANCH), extras=("torch", "widgets"))
    assert 'f"dlopt[torch,widgets] @ {_url}"' in cell
    with pytest.raises(ValueError):
        setup_source((URL, BRANCH), extras=("x]; rm",))
