"""dlopt.torch against torch.optim in each way of running a step: for-loop, foreach, compiled/fused.

Rows: parameter layouts of 10M float32 parameters (one tensor of 10M, 100 × 100k, 1000 × 10k)
and a whole training step (zero_grad, forward, backward, step) of a small
``torch.nn.TransformerEncoder`` (a few hundred parameter tensors) with AdamW. Columns, measured in
the same run with the optimizers of a row interleaved (one step of each per round, so that the
drift of a shared machine affects all alike): median milliseconds per step of

- torch.optim ``foreach=False`` (loop), ``foreach=True`` (foreach), ``fused=True`` (fused);
- dlopt.torch ``foreach=False`` (loop), ``foreach=True`` (foreach), ``compile=True`` (compiled);

and the ratios dlopt / torch in the same mode (loop/loop, foreach/foreach, compiled/fused) and
for the defaults (``foreach=None`` for both: the for-loop on CPU, foreach on CUDA).

Memory: the optimizer state (bytes of the ``state_dict`` tensors) of each variant, and the
temporary memory of one step: on CUDA its peak above the state (``torch.cuda.max_memory_allocated``),
on CPU the bytes its operators allocate (``torch.profiler`` memory events; torch has no CPU peak
counter). Growth: RSS (CPU) or allocated
memory (CUDA), and Python objects (``tracemalloc``), after 1000 steps of each dlopt mode, against
the same after the warm-up.

Compilation takes tens of seconds per layout on a small CPU and grows with the number of tensors,
so ``compile=True`` is measured by default at 1 × 10M (every optimizer) and 100 × 100k (AdamW)
only (``--compile-all`` adds the rest; ``--cases`` picks rows). The table is printed and written
to ``bench/results/<device>-<model>.md``. Run: ``python bench/bench_optim_modes.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

import torch

import dlopt.torch as dt

RESULTS = Path(__file__).parent / "results"
MODES = ("loop", "foreach", "fused/compiled")


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def variants(name, kwargs, compiled):
    """(label, constructor) of every way to run the step; torch first, then dlopt."""
    out = [
        ("torch loop", lambda ps: getattr(torch.optim, name)(ps, foreach=False, **kwargs)),
        ("torch foreach", lambda ps: getattr(torch.optim, name)(ps, foreach=True, **kwargs)),
        ("torch fused", lambda ps: getattr(torch.optim, name)(ps, fused=True, **kwargs)),
        ("dlopt loop", lambda ps: getattr(dt, name)(ps, foreach=False, **kwargs)),
        ("dlopt foreach", lambda ps: getattr(dt, name)(ps, foreach=True, **kwargs)),
    ]
    if compiled:
        out.append(("dlopt compiled", lambda ps: getattr(dt, name)(ps, compile=True, **kwargs)))
    return out


def state_bytes(opt) -> int:
    return sum(v.nelement() * v.element_size() for s in opt.state.values() for v in s.values()
               if torch.is_tensor(v))


def step_peak_bytes(step, dev) -> int:
    """Temporary memory of one call of ``step``: on CUDA the peak above what exists before it; on
    CPU, where torch keeps no such counter, the bytes the step's operators allocate (the profiler's
    memory events; an upper bound of the peak, which for a for-loop is about one tensor's worth)."""
    if dev.type == "cuda":
        sync(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        step()
        sync(dev)
        return torch.cuda.max_memory_allocated(dev) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    # an operator's usage includes its children's: count each allocation once, where it is made
    return sum(max(0, e.cpu_memory_usage - sum(c.cpu_memory_usage for c in e.cpu_children))
               for e in prof.events())


class Layout:
    """Parameters of one layout with fixed gradients: a step is ``opt.step()``."""

    def __init__(self, count, numel, dev):
        self.count, self.numel, self.dev = count, numel, dev
        self.label = f"{count}×{_human(numel // count)}"

    def make(self):
        gen = torch.Generator().manual_seed(0)
        params = []
        for _ in range(self.count):
            p = torch.randn(self.numel // self.count, generator=gen).to(self.dev)
            p.grad = (1e-2 * torch.randn(self.numel // self.count, generator=gen)).to(self.dev)
            params.append(p)
        return params, None

    def step(self, opt, model):
        opt.step()


class Transformer:
    """A whole training step of a small TransformerEncoder (zero_grad, forward, backward, step)."""

    def __init__(self, dev, layers=24, d_model=64, batch=8, seq=32):
        self.dev, self.layers, self.d_model = dev, layers, d_model
        gen = torch.Generator().manual_seed(1)
        self.x = torch.randn(batch, seq, d_model, generator=gen).to(dev)
        self.y = torch.randn(batch, seq, d_model, generator=gen).to(dev)
        params, _ = self.make()
        self.tensors = len(params)
        self.numel = sum(p.numel() for p in params)
        self.label = f"transformer ({self.tensors} tensors, {_human(self.numel)})"

    def make(self):
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(self.d_model, nhead=4, dim_feedforward=2 * self.d_model,
                                                 dropout=0.0, batch_first=True)
        model = torch.nn.TransformerEncoder(layer, self.layers, enable_nested_tensor=False).to(self.dev)
        return list(model.parameters()), model

    def step(self, opt, model):
        opt.zero_grad(set_to_none=False)
        torch.nn.functional.mse_loss(model(self.x), self.y).backward()
        opt.step()


def _human(n) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else (f"{n // 1000}k" if n % 1000 == 0 else f"{n / 1e6:.2f}M")


def measure(case, name, kwargs, compiled, repeats, warmup):
    """Median ms per step, state bytes, step peak bytes and setup seconds of every variant."""
    dev = case.dev
    runs = {}
    for label, make in variants(name, kwargs, compiled):
        params, model = case.make()
        t0 = time.perf_counter()
        try:
            opt = make(params)
            for _ in range(warmup):
                case.step(opt, model)
            sync(dev)
        except (RuntimeError, ValueError) as exc:  # e.g. no fused kernel for this device
            print(f"  {label}: skipped ({str(exc).splitlines()[0][:80]})")
            continue
        runs[label] = dict(opt=opt, model=model, setup=time.perf_counter() - t0, times=[])
    for _ in range(repeats):
        for run in runs.values():
            t0 = time.perf_counter()
            case.step(run["opt"], run["model"])
            sync(dev)
            run["times"].append(time.perf_counter() - t0)
    out = {}
    for label, run in runs.items():
        peak = step_peak_bytes(lambda run=run: case.step(run["opt"], run["model"]), dev)
        out[label] = dict(ms=1e3 * statistics.median(run["times"]), state=state_bytes(run["opt"]),
                          peak=peak, setup=run["setup"])
    del runs
    gc.collect()
    return out


def growth(dev, steps=1000):
    """Memory after ``steps`` more steps of each dlopt mode minus memory after the warm-up."""
    rows = []
    modes = [("loop", dict(foreach=False)), ("foreach", dict(foreach=True))]
    for mode, kw in modes:
        params = [torch.randn(1000, device=dev) for _ in range(50)]
        for p in params:
            p.grad = 1e-2 * torch.randn_like(p)
        opt = dt.AdamW(params, lr=1e-3, **kw)
        for _ in range(20):
            opt.step()
        sync(dev)
        gc.collect()
        tracemalloc.start()
        before_py = tracemalloc.get_traced_memory()[0]
        before = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else _rss()
        for _ in range(steps):
            opt.step()
        sync(dev)
        gc.collect()
        after = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else _rss()
        after_py = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        rows.append((mode, after - before, after_py - before_py))
    return rows


def _rss() -> int:
    """Resident set size of this process in bytes (Linux), else the peak (getrusage)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


CASES_DEFAULT = [("AdamW", dict(lr=1e-3)), ("Adam", dict(lr=1e-3)), ("SGD", dict(lr=1e-3, momentum=0.9))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M parameters, fewer repeats, AdamW only")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--numel", type=int, default=None, help="parameters per layout (default 10M)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compile-all", action="store_true", help="compile at every layout and the transformer")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: both where available)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--cases", nargs="*", default=None,
                        help="only the rows whose label contains one of these words (e.g. transformer 1000×)")
    args, _ = parser.parse_known_args(argv)  # bench/run.py passes its own filter words

    numel = args.numel or (1_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (5 if args.quick else 11)
    warmup = 3
    devices = [args.device] if args.device else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    cases = CASES_DEFAULT[:1] if args.quick else CASES_DEFAULT
    for devname in devices:
        dev = torch.device(devname)
        model = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
        head = [f"# dlopt.torch vs torch.optim: step time and memory on {devname} ({model})", "",
                f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
                f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
                f"median of {repeats} interleaved steps after {warmup} warm-up steps.", ""]
        print("\n".join(head), flush=True)
        layouts = [Layout(1, numel, dev), Layout(100, numel, dev), Layout(1000, numel, dev)]
        jobs = []
        for name, kwargs in cases:
            for i, layout in enumerate(layouts):
                compiled = not args.no_compile and (args.compile_all or i < 2 and name == "AdamW"
                                                    or i == 0)
                jobs.append((layout, name, kwargs, compiled))
        jobs.append((Transformer(dev), "AdamW", dict(lr=1e-3), not args.no_compile and args.compile_all))
        if args.cases:
            jobs = [job for job in jobs if any(word in job[0].label for word in args.cases)]
        table = ["| case | optimizer | torch loop | torch foreach | torch fused | dlopt loop | dlopt foreach "
                 "| dlopt compiled | loop ratio | foreach ratio | compiled/fused | default ratio | state MB "
                 "(torch/dlopt) | step temporaries MB torch loop/foreach/fused · dlopt loop/foreach/compiled "
                 "| compile s |",
                 "|" + "---|" * 15]
        print("\n".join(table), flush=True)
        for case, name, kwargs, compiled in jobs:
            r = measure(case, name, kwargs, compiled, repeats, warmup)

            def ms(label, r=r):
                return f"{r[label]['ms']:.2f}" if label in r else "–"

            def ratio(a, b, r=r):
                return f"{r[a]['ms'] / r[b]['ms']:.2f}" if a in r and b in r else "–"

            default = "foreach" if dev.type == "cuda" else "loop"
            peaks = "/".join(f"{r[k]['peak'] / 2**20:.0f}" if k in r else "–" for k in
                             ("torch loop", "torch foreach", "torch fused")) + " · " + "/".join(
                f"{r[k]['peak'] / 2**20:.0f}" if k in r else "–" for k in
                ("dlopt loop", "dlopt foreach", "dlopt compiled"))
            states = f"{r['torch loop']['state'] / 2**20:.0f}/" + "/".join(
                f"{r[k]['state'] / 2**20:.0f}" for k in ("dlopt loop", "dlopt foreach", "dlopt compiled") if k in r)
            row = (f"| {case.label} | {name} | {ms('torch loop')} | {ms('torch foreach')} | {ms('torch fused')} "
                   f"| {ms('dlopt loop')} | {ms('dlopt foreach')} | {ms('dlopt compiled')} "
                   f"| {ratio('dlopt loop', 'torch loop')} | {ratio('dlopt foreach', 'torch foreach')} "
                   f"| {ratio('dlopt compiled', 'torch fused')} | {ratio('dlopt ' + default, 'torch ' + default)} "
                   f"| {states} | {peaks} | "
                   + (f"{r['dlopt compiled']['setup']:.0f}" if "dlopt compiled" in r else "–") + " |")
            table.append(row)
            print(row, flush=True)
        grow = growth(dev)
        what = "allocated CUDA memory" if dev.type == "cuda" else "RSS"
        tail = ["", "Milliseconds per step (lower is better); ratios are dlopt / torch in the same mode "
                f"(default: both with foreach=None, i.e. {default}). State MB: torch loop / dlopt loop / "
                "foreach / compiled. Step temporaries: "
                + ("peak above the state" if dev.type == "cuda" else "bytes allocated during one step")
                + ", torch · dlopt.", "",
                "Growth over 1000 AdamW steps (50 × 1000 parameters), after 20 warm-up steps: "
                + "; ".join(f"{mode}: {what} {d / 1024:+.0f} KiB, Python objects {p / 1024:+.1f} KiB"
                            for mode, d, p in grow) + ".", "",
                f"Load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: a shared machine "
                "makes single timings noisy; the interleaved ratios are what to compare."]
        if not args.no_compile and not args.compile_all:
            tail.append("compile=True measured at 1×10M for every optimizer and at 100×100k for AdamW "
                        "(--compile-all for 1000×10k and the transformer: minutes of compilation on a small CPU).")
        print("\n".join(tail), flush=True)
        if not args.no_write:
            RESULTS.mkdir(exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", f"{devname}-{model}".lower()).strip("-")
            path = RESULTS / f"{slug}.md"
            path.write_text("\n".join(head + table + tail) + "\n")
            print(f"written to {path.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
