"""The course around a problem set: roster, deadlines and late policy, grades given by hand, exports.

- **Roster** (``--roster roster.csv``): one row per student, a ``file`` column (the name of the
  notebook the student submits, with or without ``.ipynb``) or a ``student`` column (the id the
  grader gives that file), and any of ``name``, ``email``, ``lms_id``, ``extension_days``.
  Submissions nobody on the roster made and students with no submission are both reported.
- **Deadline** (``--deadline 2026-03-01T23:59+01:00``) and **late policy** (``--late-policy``:
  ``zero`` or ``10%/day``, the default ``none`` only reports lateness): a submission's time is the
  file's modification time; whole days late are counted after the deadline plus the student's
  ``extension_days``.
- **Grades given by hand** (``--manual scores.csv``): a ``student`` column (an id or a file name),
  one column per free-text question id with the points, and optionally ``<id> comment`` columns.
  An unknown student or an unknown column is an error, never silently ignored.
- **LMS export**: :func:`write_lms_csv` writes a gradebook to import into Canvas or Moodle.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["Roster", "read_roster", "parse_deadline", "LatePolicy", "read_manual", "write_lms_csv"]

ROSTER_COLUMNS = ("file", "student", "name", "email", "lms_id", "extension_days")


def _key(name: str) -> str:
    from .grader import student_id

    return student_id(name.strip())


@dataclass
class Roster:
    rows: dict            # student id -> {"name", "email", "lms_id", "extension_days"}
    path: Path


def read_roster(path: str | Path) -> Roster:
    """Read a roster CSV; ``ValueError`` for unknown columns, duplicates, bad extensions."""
    path = Path(path)
    rows: dict = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        unknown = [c for c in columns if c not in ROSTER_COLUMNS]
        if unknown:
            raise ValueError(f"{path}: unknown roster column(s) {unknown}; known: {list(ROSTER_COLUMNS)}")
        if "file" not in columns and "student" not in columns:
            raise ValueError(f"{path}: a roster needs a 'file' or a 'student' column")
        for n, row in enumerate(reader, start=2):
            ident = (row.get("file") or "").strip()
            sid = _key(ident) if ident else (row.get("student") or "").strip()
            if not sid:
                raise ValueError(f"{path}, line {n}: no file or student id")
            if sid in rows:
                raise ValueError(f"{path}, line {n}: {sid!r} appears twice")
            ext = (row.get("extension_days") or "0").strip() or "0"
            try:
                days = float(ext)
            except ValueError:
                raise ValueError(f"{path}, line {n}: extension_days {ext!r} is not a number") from None
            if not math.isfinite(days) or days < 0:
                raise ValueError(f"{path}, line {n}: extension_days must be >= 0")
            rows[sid] = {"name": (row.get("name") or "").strip(), "email": (row.get("email") or "").strip(),
                         "lms_id": (row.get("lms_id") or "").strip(), "extension_days": days}
    return Roster(rows, path)


def parse_deadline(text: str) -> datetime:
    """An ISO 8601 date-time (``2026-03-01T23:59``, with an offset or ``Z``; without one: UTC)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"deadline {text!r} is not an ISO 8601 date-time such as 2026-03-01T23:59+01:00") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass
class LatePolicy:
    """``none`` (lateness reported only), ``zero`` (a late submission scores 0) or ``P%/day``."""

    kind: str = "none"
    per_day: float = 0.0

    @classmethod
    def parse(cls, text: str) -> LatePolicy:
        text = text.strip().lower()
        if text in ("none", "zero"):
            return cls(text)
        m = re.fullmatch(r"(\d+(?:\.\d+)?)%/day", text)
        if not m or not 0 < float(m[1]) <= 100:
            raise ValueError(f"late policy {text!r}: use none, zero or a percentage per day such as 10%/day")
        return cls("per-day", float(m[1]) / 100)

    def penalty(self, days: int) -> float:
        if days <= 0 or self.kind == "none":
            return 0.0
        if self.kind == "zero":
            return 1.0
        return min(1.0, self.per_day * days)

    def __str__(self) -> str:
        return f"{self.per_day * 100:g}%/day" if self.kind == "per-day" else self.kind


def days_late(mtime: float, deadline: datetime, extension_days: float = 0.0) -> int:
    """Whole days (rounded up) a file modified at ``mtime`` is after the deadline plus the extension."""
    late = mtime - deadline.timestamp() - extension_days * 86400
    return 0 if late <= 0 else math.ceil(late / 86400)


def read_manual(path: str | Path, ps, students) -> dict:
    """``{student id: {question id: (points or None, comment)}}`` from a CSV of grades given by hand.

    Columns: ``student`` (an id or a file name), one per free-text question id (points; empty:
    not graded yet) and ``<question id> comment``. ``ValueError`` names any unknown student,
    unknown column or out-of-range score."""
    path = Path(path)
    points = {m.id: m.points for m in ps.manuals}
    known = set(students)
    out: dict = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if "student" not in columns:
            raise ValueError(f"{path}: the manual grades need a 'student' column")
        bad = [c for c in columns if c != "student" and c not in points
               and not (c.endswith(" comment") and c[: -len(" comment")] in points)]
        if bad:
            raise ValueError(f"{path}: unknown column(s) {bad}; this problem set's free-text questions are "
                             f"{sorted(points)} (a comment goes in a column '<id> comment')")
        for n, row in enumerate(reader, start=2):
            raw = (row.get("student") or "").strip()
            sid = raw if raw in known else _key(raw)
            if sid not in known:
                raise ValueError(f"{path}, line {n}: no submission from student {raw!r}")
            if sid in out:
                raise ValueError(f"{path}, line {n}: student {raw!r} appears twice")
            entry = {}
            for mid, most in points.items():
                value = (row.get(mid) or "").strip()
                comment = (row.get(f"{mid} comment") or "").strip()
                score = None
                if value:
                    try:
                        score = float(value)
                    except ValueError:
                        raise ValueError(f"{path}, line {n}: {mid} = {value!r} is not a number") from None
                    if not (math.isfinite(score) and 0 <= score <= most):
                        raise ValueError(f"{path}: {raw}, {mid}: {score:g} is outside [0, {most:g}]")
                if score is not None or comment:
                    entry[mid] = (score, comment)
            out[sid] = entry
    return out


def write_lms_csv(results: list, max_points: float, path: str | Path, *, assignment: str,
                  flavor: str = "canvas") -> None:
    """A gradebook to import into an LMS; students need an ``lms_id`` (or an email) in the roster.

    ``canvas``: the columns Canvas's gradebook import reads (``Student``, ``ID``, ``SIS User ID``,
    ``SIS Login ID``, ``Section``, then one column named after the assignment, with a row
    ``Points Possible``). ``moodle``: ``Email address``, ``ID number``, the grade column and a
    ``Feedback`` column, as Moodle's CSV grade import maps them."""
    from .grader import _fmt

    rows = sorted(results, key=lambda r: r.student)
    with open(path, "w", newline="", encoding="utf-8", errors="replace") as fh:
        w = csv.writer(fh)
        if flavor == "canvas":
            w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
            w.writerow(["Points Possible", "", "", "", "", _fmt(max_points)])
            for r in rows:
                w.writerow([r.info.get("name") or r.student, r.info.get("lms_id", ""), r.info.get("lms_id", ""),
                            r.info.get("email", ""), "", _fmt(r.total())])
        elif flavor == "moodle":
            w.writerow(["Email address", "ID number", assignment, "Feedback"])
            for r in rows:
                w.writerow([r.info.get("email", ""), r.info.get("lms_id", ""), _fmt(r.total()),
                            f"status {r.status}" + (f", {r.late_days} day(s) late" if r.late_days else "")])
        else:
            raise ValueError(f"unknown LMS format {flavor!r}: canvas or moodle")
