"""Dump, or compare, every glued value of the executed pages in the build's jupyter-cache.

myst-nb's ``glue(name, value)`` stores a display output whose metadata names it
(``metadata.scrapbook.name``); the book's prose shows these values. A change to ``dlopt`` that
should not move the book's numbers can be checked by dumping them before and after::

    python tools/glue_values.py dump /tmp/glue-before.json          # after tools/execute_pages.py
    ... change the code, execute the pages again ...
    python tools/glue_values.py compare /tmp/glue-before.json       # exit 1 if a value moved

Values are the text (``text/plain``, or ``text/html``/``text/latex``/``text/markdown`` when there
is no plain text) of each glued output; images are recorded by their mime type only (a figure's
bytes change with library versions and are not a number in the prose), and an object's memory
address in its repr (``<... at 0x7f...>``) is blanked. Timings glued by pages differ from run to
run and are reported like any other change. ``--path-output`` is
``jupyter-book build``'s option of the same name (default: the book root).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("text/plain", "text/latex", "text/markdown", "text/html")


ADDRESS = re.compile(r" at 0x[0-9a-f]+>")  # an object's repr names its memory address


def _text(data: dict) -> str:
    for mime in TEXT:
        for key in (mime, f"application/papermill.record/{mime}"):
            if key in data:
                value = data[key]
                text = "".join(value) if isinstance(value, list) else str(value)
                return ADDRESS.sub(" at 0x…>", text)
    return "<" + ",".join(sorted(data)) + ">"


def glued(path_output: Path) -> dict[str, dict[str, str]]:
    """``{page: {name: text}}`` for every page in the cache (the latest record per page)."""
    from jupyter_cache import get_cache

    cache = get_cache(path_output / "_build" / ".jupyter_cache")
    records = sorted(cache.list_cache_records(), key=lambda r: r.created)
    out: dict[str, dict[str, str]] = {}
    for record in records:  # later records of the same page replace earlier ones
        page = str(Path(record.uri).resolve().relative_to(path_output.resolve())) \
            if Path(record.uri).is_absolute() else record.uri
        nb = cache.get_cache_bundle(record.pk).nb
        values: dict[str, str] = {}
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                if name is not None:
                    values[name] = _text(output.get("data", {}))
        out[page] = values
    return dict(sorted(out.items()))


def compare(before: dict, after: dict) -> list[str]:
    """Lines describing every glued value that differs, appeared or disappeared."""
    lines = []
    for page in sorted(set(before) | set(after)):
        b, a = before.get(page), after.get(page)
        if b is None or a is None:
            lines.append(f"{page}: page {'missing after' if a is None else 'new'}")
            continue
        for name in sorted(set(b) | set(a)):
            if b.get(name) != a.get(name):
                lines.append(f"{page}: {name}: {b.get(name)!r} -> {a.get(name)!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("dump", "compare"))
    parser.add_argument("file", type=Path, help="the JSON file to write (dump) or read (compare)")
    parser.add_argument("--path-output", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    values = glued(args.path_output)
    if args.command == "dump":
        args.file.write_text(json.dumps(values, indent=1, ensure_ascii=False) + "\n")
        print(f"{sum(map(len, values.values()))} glued values on {len(values)} pages -> {args.file}")
        return 0
    lines = compare(json.loads(args.file.read_text()), values)
    print("\n".join(lines) if lines else
          f"all {sum(map(len, values.values()))} glued values identical")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
