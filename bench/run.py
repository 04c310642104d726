"""Run every benchmark script ``bench/bench_*.py`` in turn (``make bench``).

Each script prints its own table of ratios against torch.optim / scipy measured in the same run.
"""

import runpy
import sys
from pathlib import Path

here = Path(__file__).parent
scripts = sorted(here.glob("bench_*.py"))
if len(sys.argv) > 1:
    scripts = [s for s in scripts if any(a in s.name for a in sys.argv[1:])]
for script in scripts:
    print(f"\n=== {script.name} ===", flush=True)
    runpy.run_path(str(script), run_name="__main__")
