"""The grader's pieces: check instrumentation, the format, comparisons, the CLI, determinism."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlopt.grading import STUB, expect, release, release_notebook
from dlopt.grading.grader import grade, _judge_site
from dlopt.grading.instrument import FormatError, instrument
from dlopt.grading.problemset import load_problem_set, read_submission, InvalidSubmission
from dlopt.grading.sandbox import Limits, parse_records

ROOT = Path(__file__).resolve().parents[2]
BATTERY = ROOT / "tests" / "grading" / "grading_cases" / "battery.ipynb"
FAST = Limits(timeout=20, cell_timeout=5, check_timeout=5, memory_mb=1024, nproc=64)

CELL = '''rng = np.random.default_rng(1)
for _ in range(3):
    lam = rng.uniform(0.01, 10.0, 5)
    expect.close(gd_rate(lam, 0.1),
                 np.max(np.abs(1 - 0.1 * lam)) + SECRET_OFFSET, rtol=1e-9, msg="rate")
expect.holds(losses(f, x0), lambda v: np.all(np.diff(v) <= tol), "decreasing")
expect.raises(ValueError, lambda: backtracking(f, g, x, c=2.0))
expect.equal(best([1, 2]), 31415926)
'''


# ---------------------------------------------------------------- instrumentation
def test_student_variant_never_contains_the_expected_side():
    plan = instrument(CELL)
    student = plan.student_code
    for secret in ("SECRET_OFFSET", "31415926", "np.diff", "ValueError", "rtol", "decreasing", "tol"):
        assert secret not in student, secret
    for needed in ("gd_rate(lam, 0.1)", "losses(f, x0)", "lambda: backtracking(f, g, x, c=2.0)", "best([1, 2])"):
        assert needed in student
    assert "gd_rate" not in plan.reference_code and "SECRET_OFFSET" in plan.reference_code
    assert "31415926" in plan.reference_code and "'tol': tol" in plan.reference_code


def test_sites_options_and_line_numbers():
    plan = instrument(CELL)
    kinds = [(s.index, s.kind, s.line) for s in plan.sites]
    assert kinds == [(0, "close", 4), (1, "holds", 6), (2, "raises", 7), (3, "equal", 8)]
    assert plan.sites[0].options == {"rtol": 1e-9, "msg": "rate"}
    assert plan.sites[1].predicate == "lambda v: np.all(np.diff(v) <= tol)"
    assert plan.sites[1].free_names == ["tol"]
    assert plan.sites[2].exceptions == ["ValueError"]
    # every line of the cell stays on its line in the student variant (tracebacks point right)
    lines = plan.student_code.splitlines()
    assert lines[2].strip() == "lam = rng.uniform(0.01, 10.0, 5)" and "__dlopt_rec__(1" in lines[5]
    ast.parse(plan.student_code)
    ast.parse(plan.reference_code)


@pytest.mark.parametrize("bad, why", [
    ("x = 1", "must call expect"),
    ("assert f(1) == 2\nexpect.equal(f(1), 2)", "instead of assert"),
    ("expect.close(f(1), 2, rtol=tol)", "must be a literal"),
    ("expect.close(f(1), 2, tolerance=1)", "unknown option"),
    ("expect.equal(expect.equal(1, 1), None)", "nested"),
    ("expect.raises(make_error(), lambda: f(1))", "class name"),
    ("expect.close(f(1)", "syntax error"),
])
def test_format_errors(bad, why):
    with pytest.raises(FormatError, match=why):
        instrument(bad)


def _nb(*cells):
    return new_notebook(cells=list(cells))


def _check(src, cid="a", points=1, tags=("check",)):
    c = new_code_cell(src)
    c.metadata = {"tags": list(tags), "dlopt": {"id": cid, "points": points}}
    return c


@pytest.mark.parametrize("cells, why", [
    ([_check("expect.equal(f(), 1)"), _check("expect.equal(f(), 2)")], "duplicate id"),
    ([_check("expect.equal(f(), 1)", points="two")], "points"),
    ([_check("expect.equal(f(), 1)", cid="a b")], "dlopt.id"),
    ([new_code_cell("x = 1")], "no check cells"),
    ([_check("expect.equal(f(), 1)"), new_markdown_cell("Why?")], None),
])
def test_problem_set_format(tmp_path, cells, why):
    nb = _nb(*cells)
    if why is None:  # a manual question without an answer cell
        nb.cells[-1].metadata = {"tags": ["manual"], "dlopt": {"id": "why", "points": 1}}
        why = "followed by a markdown cell tagged 'answer'"
    nbformat.write(nb, tmp_path / "s.ipynb")
    with pytest.raises(FormatError, match=why):
        load_problem_set(tmp_path / "s.ipynb")


def test_battery_problem_set_loads():
    ps = load_problem_set(BATTERY)
    assert [c.id for c in ps.checks] == ["sq", "sq-hidden", "log", "count", "order"]
    assert [c.hidden for c in ps.checks] == [False, True, False, True, False]
    assert ps.checks[-1].timeout == 3 and [m.id for m in ps.manuals] == ["why-nlogn"]
    assert ps.max_points() == 7


# ---------------------------------------------------------------- release
def test_release_stubs_solutions_and_drops_hidden_checks(tmp_path):
    out = release(BATTERY, tmp_path)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert STUB in text and "BEGIN SOLUTION" not in text and "math.log(x)" not in text
    assert not any("hidden" in c.metadata.get("tags", []) for c in nb.cells)
    assert any(c.metadata.get("dlopt", {}).get("id") == "sq" for c in nb.cells)
    from dlopt.grading.setup_cell import repository

    assert release_notebook(nbformat.read(BATTERY, as_version=4), repository(BATTERY)).cells == nb.cells


# ---------------------------------------------------------------- judging data
def test_comparisons_handle_nan_inf_and_shapes():
    plan = instrument("expect.close(f(), 1.0)\nexpect.equal(g(), [1, 2])\n"
                      "expect.holds(h(), lambda v: np.all(v > 0))\nexpect.raises(KeyError, lambda: k())")
    close, equal, holds, raises = plan.sites
    nan = expect.to_data(float("nan"))
    assert _judge_site(close, {"d": nan}, nan) is None
    assert "nan" in _judge_site(close, {"d": nan}, 1.0)
    assert _judge_site(close, {"d": expect.to_data(np.inf)}, expect.to_data(np.inf)) is None
    assert _judge_site(close, {"d": expect.to_data(-np.inf)}, expect.to_data(np.inf))
    assert "length" in _judge_site(equal, {"d": [1, 2, 3]}, [1, 2])
    assert _judge_site(equal, {"d": [[1, 2]]}, [1, 2])
    assert _judge_site(equal, {"d": "2"}, 2)
    assert _judge_site(holds, {"d": [1, 2]}, {}) is None
    assert "does not hold" in _judge_site(holds, {"d": [1, -2]}, {})
    assert "could not be evaluated" in _judge_site(holds, {"d": ["1", "2"]}, {})
    assert _judge_site(raises, {"d": {"raised": "KeyError", "mro": ["KeyError", "LookupError"]}}, None) is None
    assert "nothing was" in _judge_site(raises, {"d": {"raised": None}}, None)
    assert "expected KeyError" in _judge_site(raises, {"d": {"raised": "TypeError", "mro": ["TypeError"]}}, None)
    assert "not data" in _judge_site(close, {"e": "TypeError: a check needs data"}, 1.0)


def test_as_array_only_for_numbers():
    assert isinstance(expect.as_array_if_numeric([1, 2.5]), np.ndarray)
    assert expect.as_array_if_numeric(["1", "2"]) == ["1", "2"]
    assert expect.as_array_if_numeric([[1], [2, 3]]) == [[1], [2, 3]]


def test_results_channel_is_json_lines_only():
    raw = (b'{"t": "rec", "c": 0, "s": 0, "d": 1}\n'
           b'\x80\x04\x95pickle\n[1, 2]\n{"no_t": 1}\n{"t": "rec", "d": NaN}\n' + b"[" * 100000 + b"\n"
           b'{"t": "end"}\n{"t": "partial')
    recs = parse_records(raw)
    assert recs[0] == {"t": "rec", "c": 0, "s": 0, "d": 1} and recs[-1] == {"t": "end"}
    assert len(recs) == 3 and np.isnan(recs[1]["d"])


def test_invalid_submissions_are_reported(tmp_path):
    (tmp_path / "a.ipynb").write_bytes(b"\xff\xfe{}")
    (tmp_path / "b.ipynb").write_text("{")
    (tmp_path / "c.ipynb").write_text('{"cells": 3}')
    for name, why in [("a", "UTF-8"), ("b", "not valid JSON"), ("c", "not a Jupyter notebook")]:
        with pytest.raises(InvalidSubmission, match=why):
            read_submission(tmp_path / f"{name}.ipynb")


# ---------------------------------------------------------------- whole runs
def _submissions(folder: Path) -> None:
    folder.mkdir()
    student = release_notebook(nbformat.read(BATTERY, as_version=4))
    solved = nbformat.read(BATTERY, as_version=4)
    nbformat.write(solved, folder / "ada.ipynb")
    nbformat.write(student, folder / "bob.ipynb")
    half = release_notebook(nbformat.read(BATTERY, as_version=4))
    next(c for c in half.cells if "def square" in c.source).source = (
        "def square(x):\n    return np.asarray(x, float) ** 2 + np.random.rand() * 1e-3\n")
    next(c for c in half.cells if "answer" in c.metadata.get("tags", [])).source = (
        "Because a comparison sort must tell n! orderings apart.")
    nbformat.write(half, folder / "cy.ipynb")


def test_grading_is_deterministic_and_writes_csv_and_feedback(tmp_path):
    _submissions(tmp_path / "subs")
    (tmp_path / "manual.csv").write_text("student,why-nlogn\ncy,1\n")
    outs = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        grade(BATTERY, tmp_path / "subs", out, jobs=2, limits=FAST, manual=tmp_path / "manual.csv",
              progress=False)
        outs.append(out)
    csv0 = (outs[0] / "grades.csv").read_text()
    assert csv0 == (outs[1] / "grades.csv").read_text()
    assert csv0.splitlines() == [
        "student,file,sq,sq-hidden,log,count,order,why-nlogn,total,max,status,round",
        "ada,ada.ipynb,1,2,1,1,1,,6,7,ok,0",
        "bob,bob.ipynb,0,0,0,0,0,,0,7,ok,0",
        "cy,cy.ipynb,0,0,0,0,0,1,1,7,ok,0",
    ]
    for name in ("ada", "bob", "cy"):
        assert (outs[0] / "feedback" / f"{name}.md").read_text() == (outs[1] / "feedback" / f"{name}.md").read_text()
    bob = (outs[0] / "feedback" / "bob.md").read_text()
    assert "NotImplementedError" in bob and "sq-hidden (hidden)" in bob
    cy = (outs[0] / "feedback" / "cy.md").read_text()
    assert "why-nlogn**: 1 / 1" in cy and "got" in cy
    answers = (outs[0] / "answers" / "why-nlogn.md").read_text()
    assert "## cy" in answers and "n! orderings" in answers and "## bob" in answers


def test_manual_scores_are_validated(tmp_path):
    _submissions(tmp_path / "subs")
    (tmp_path / "manual.csv").write_text("student,why-nlogn\nada,5\n")
    with pytest.raises(ValueError, match="outside"):
        grade(BATTERY, tmp_path / "subs", tmp_path / "out", limits=FAST, manual=tmp_path / "manual.csv",
              progress=False)


def test_cli_help_and_release(tmp_path):
    for args in ([], ["release"], ["grade"], ["check"]):
        done = subprocess.run([sys.executable, "-m", "dlopt.grading", *args, "--help"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "usage: dlopt-grade" in done.stdout
    done = subprocess.run([sys.executable, "-m", "dlopt.grading", "release", str(BATTERY), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and (tmp_path / "battery.ipynb").exists()


def test_cli_grade(tmp_path):
    _submissions(tmp_path / "subs")
    done = subprocess.run([sys.executable, "-m", "dlopt.grading", "grade", str(BATTERY), str(tmp_path / "subs"),
                           "--out", str(tmp_path / "out"), "--jobs", "2", "--timeout", "20", "--memory", "1024",
                           "--no-progress"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ada,ada.ipynb,1,2,1,1,1,,6,7,ok,0" in (tmp_path / "out" / "grades.csv").read_text()


def test_reference_is_computed_once_and_cached(tmp_path):
    import json

    _submissions(tmp_path / "subs")
    out = tmp_path / "out"
    grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False)
    cache = out / ".reference-0.json"
    stored = json.loads(cache.read_text())
    stored["data"]["0"]["0"] = [[0.0, 0.0, 0.0]]          # tamper: the cached data is what is used
    cache.write_text(json.dumps(stored))
    results = {r.student: r for r in grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False)}
    assert results["ada"].points["sq"] == 0
    stored["digest"] = "another source"                    # a changed source or dlopt: recomputed
    cache.write_text(json.dumps(stored))
    results = {r.student: r for r in grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False)}
    assert results["ada"].points["sq"] == 1


# ---------------------------------------------------------------- the course workflow
def test_roster_deadline_late_policy_manual_comments_only_html_lms(tmp_path):
    import csv
    import os

    from dlopt.grading.course import write_lms_csv
    from dlopt.grading.problemset import load_problem_set

    _submissions(tmp_path / "subs")
    nbformat.write(nbformat.read(BATTERY, as_version=4), tmp_path / "subs" / "dee.ipynb")
    (tmp_path / "subs" / "notes.txt").write_text("not a notebook")
    due = 1_700_000_000
    for name, offset in [("ada", -3600), ("bob", 0), ("cy", 3600), ("dee", 86400 * 2 + 60)]:
        os.utime(tmp_path / "subs" / f"{name}.ipynb", (due + offset, due + offset))
    (tmp_path / "roster.csv").write_text("file,name,email,lms_id,extension_days\n"
                                         "ada.ipynb,Ada L.,ada@uni.edu,1001,0\nbob,Bob B.,bob@uni.edu,1002,0\n"
                                         "cy,Cy C.,cy@uni.edu,1003,1\ndee,Dee D.,dee@uni.edu,1004,0\n"
                                         "eve,Eve E.,eve@uni.edu,1005,0\n")
    (tmp_path / "manual.csv").write_text("student,why-nlogn,why-nlogn comment\n"
                                         "cy.ipynb,0.5,Right idea; say why log(n!) ~ n log n.\n")
    out = tmp_path / "out"
    results = grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False, roster=tmp_path / "roster.csv",
                    deadline="2023-11-14T22:13:20Z", late_policy="10%/day", manual=tmp_path / "manual.csv",
                    html=True)
    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert [rows[s]["days_late"] for s in ("ada", "bob", "cy", "dee")] == ["0", "0", "0", "3"]
    assert rows["dee"]["penalty"] == "30%" and rows["dee"]["total"] == "4.2"     # 6 points, 3 days at 10%
    assert rows["ada"]["name"] == "Ada L." and rows["cy"]["lms_id"] == "1003"
    assert rows["cy"]["why-nlogn"] == "0.5" and rows["cy"]["total"] == "0.5"
    cy = (out / "feedback" / "cy.md").read_text()
    assert "Right idea; say why log(n!) ~ n log n." in cy and "why-nlogn**: 0.5 / 1" in cy
    assert "3 day(s) late: 30% of the points taken" in (out / "feedback" / "dee.md").read_text()
    page = (out / "feedback" / "cy.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Right idea" in page and "\\" not in page
    report = (out / "report.txt").read_text()
    assert "notes.txt: not a submission" in report and "eve: no submission (on the roster: Eve E.)" in report
    write_lms_csv(results, load_problem_set(BATTERY).max_points(), out / "canvas.csv", assignment="battery")
    canvas = list(csv.reader(open(out / "canvas.csv")))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "battery"]
    assert canvas[1][0] == "Points Possible" and canvas[1][-1] == "7"
    assert ["Dee D.", "1004", "1004", "dee@uni.edu", "", "4.2"] in canvas
    write_lms_csv(results, 7, out / "moodle.csv", assignment="battery", flavor="moodle")
    assert list(csv.reader(open(out / "moodle.csv")))[0] == ["Email address", "ID number", "battery", "Feedback"]

    # regrade one student: the other rows stay as they were
    (tmp_path / "subs" / "bob.ipynb").write_bytes((tmp_path / "subs" / "ada.ipynb").read_bytes())
    grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False, only_students=["bob"])
    again = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert again["bob"]["total"] == "6" and again["cy"]["total"] == "0.5" and set(again) == set(rows)
    # without --roster, --deadline and --manual the regraded row keeps what the gradebook had
    assert again["bob"]["name"] == "Bob B." and again["bob"]["lms_id"] == "1002"
    assert again["dee"]["total"] == "4.2" and again["dee"]["penalty"] == "30%"
    assert again["dee"]["email"] == "dee@uni.edu"
    (tmp_path / "subs" / "cy.ipynb").write_bytes((tmp_path / "subs" / "ada.ipynb").read_bytes())
    grade(BATTERY, tmp_path / "subs", out, limits=FAST, progress=False, only_students=["cy", "dee"])
    third = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert third["cy"]["name"] == "Cy C." and third["cy"]["why-nlogn"] == "0.5" and third["cy"]["total"] == "6.5"
    assert third["dee"]["total"] == "4.2" and third["dee"]["days_late"] == "3"


@pytest.mark.parametrize("text, why", [
    ("student,why-nlogn\nzed,1\n", "no submission from student 'zed'"),
    ("student,why-nlogn,bonus\nada,1,2\n", "unknown column"),
    ("student,why-nlogn\nada,5\n", "outside"),
    ("name,why-nlogn\nada,1\n", "'student' column"),
])
def test_manual_grades_are_validated(tmp_path, text, why):
    _submissions(tmp_path / "subs")
    (tmp_path / "manual.csv").write_text(text)
    with pytest.raises(ValueError, match=why):
        grade(BATTERY, tmp_path / "subs", tmp_path / "out", limits=FAST, manual=tmp_path / "manual.csv",
              progress=False)


def test_rounds_give_hidden_checks_fresh_inputs(tmp_path):
    """A lookup table of round 0's hidden inputs earns nothing in round 1."""
    rng = np.random.default_rng(3)
    table = {tuple(np.round(x, 12)): list(x * x) for x in (rng.standard_normal(4) for _ in range(5))}
    subs = tmp_path / "subs"
    subs.mkdir()
    nb = nbformat.read(BATTERY, as_version=4)
    for cell in nb.cells:
        if "def square" in cell.source:
            cell.source = (f"TABLE = {table!r}\ndef square(x):\n    x = np.asarray(x, dtype=float)\n"
                           "    return TABLE.get(tuple(np.round(x, 12)), list(x * x if len(x) == 3 else x))\n")
    nbformat.write(nb, subs / "lookup.ipynb")
    nbformat.write(nbformat.read(BATTERY, as_version=4), subs / "honest.ipynb")
    scores = {}
    for rounds in (0, 1):
        res = {r.student: r for r in grade(BATTERY, subs, tmp_path / f"out{rounds}", limits=FAST, rounds=rounds,
                                           progress=False, jobs=2)}
        scores[rounds] = (res["lookup"].points["sq-hidden"], res["honest"].points["sq-hidden"], res["lookup"].round)
    assert scores == {0: (2, 2, 0), 1: (0, 2, 1)}
    assert ",1\n" in (tmp_path / "out1" / "grades.csv").read_text()


def test_partial_credit_per_assertion_group(tmp_path):
    src = _nb(new_code_cell("import numpy as np\nfrom dlopt.grading import expect\n"),
              new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"),
              _check("expect.equal(f(1), 2, group='small')\nexpect.equal(f(10), 20, group='large')\n"
                     "expect.equal(f(-3), -6, group='negative')", cid="f", points=3))
    src.cells[-1].metadata["dlopt"]["parts"] = {"small": 1, "large": 1.5, "negative": 0.5}
    nbformat.write(src, tmp_path / "set.ipynb")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name, body in [("full", "return 2 * x"), ("positive-only", "return 2 * abs(x)"),
                       ("small-only", "return 2 if x == 1 else 0"), ("raises", "raise ValueError('no')")]:
        nb = release_notebook(src)
        next(c for c in nb.cells if "def f" in c.source).source = f"def f(x):\n    {body}\n"
        nbformat.write(nb, subs / f"{name}.ipynb")
    res = {r.student: r for r in grade(tmp_path / "set.ipynb", subs, tmp_path / "out", limits=FAST, progress=False)}
    assert {k: r.points["f"] for k, r in res.items()} == {"full": 3, "positive-only": 2.5, "small-only": 1,
                                                          "raises": 0}
    assert "part negative (0.5 points)" in res["positive-only"].reasons["f"]
    bad = _nb(_check("expect.equal(f(1), 2, group='a')", cid="g", points=1))
    nbformat.write(bad, tmp_path / "bad.ipynb")
    with pytest.raises(FormatError, match="needs dlopt.parts"):
        load_problem_set(tmp_path / "bad.ipynb")


def test_gradescope_bundle_runs_and_scores_like_grade(tmp_path):
    import json
    import os
    import zipfile

    done = subprocess.run([sys.executable, "-m", "dlopt.grading", "gradescope", str(BATTERY), "--out",
                           str(tmp_path / "autograder.zip"), "--timeout", "20", "--memory", "1024"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "autograder"
    with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
        assert sorted(zf.namelist()) == ["battery.ipynb", "run_autograder", "setup.sh"]
        assert (zf.getinfo("run_autograder").external_attr >> 16) & 0o111
        zf.extractall(root / "source")
    _submissions(tmp_path / "subs")
    (root / "submission").mkdir()
    (root / "submission" / "battery.ipynb").write_bytes((tmp_path / "subs" / "cy.ipynb").read_bytes())
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert set(data) >= {"score", "tests", "output", "execution_time"}
    assert [t["name"] for t in data["tests"]] == ["sq", "sq-hidden (hidden)", "log", "count (hidden)", "order"]
    assert {t["visibility"] for t in data["tests"]} == {"visible", "after_published"}
    assert all(set(t) >= {"score", "max_score", "name", "status", "output"} for t in data["tests"])
    ours = {r.student: r for r in grade(BATTERY, tmp_path / "subs", tmp_path / "out", limits=FAST, progress=False)}
    assert data["score"] == sum(ours["cy"].points.values()) == sum(t["score"] for t in data["tests"])
    assert sum(t["max_score"] for t in data["tests"]) == 6


def test_a_driver_that_fails_the_sources_cells_is_a_grader_error():
    """The check driver runs the source's cells for every submission: should one fail there (the
    reference run passed them), the row says so instead of blaming the student."""
    from dlopt.grading.grader import _combine, score
    from dlopt.grading.sandbox import RunResult

    ps = load_problem_set(BATTERY)
    student = RunResult(records=[{"t": "sub", "numbers": [], "answers": {}}, {"t": "end"}], returncode=0)
    driver = RunResult(records=[{"t": "cell", "i": 2, "error": "TimeoutError: time limit exceeded"},
                                {"t": "end"}], returncode=0)
    run = _combine(student, driver)
    res = score(ps, {k: {s: [] for s in range(len(c.plan.sites))} for k, c in enumerate(ps.checks)},
                run, FAST, "ada")
    assert res.status == "error" and "could not run cell 2 of the source" in res.detail
