"""Step time of dlopt.torch optimizers against torch.optim, at 10M parameters.

For Adam, AdamW, SGD with momentum, RMSprop and Adagrad, in two layouts (one tensor of 10M
parameters, and 100 tensors of 100k), on ``dlopt.device()``:

- **eager**: ``dlopt.torch.X`` (the rule called tensor by tensor) vs ``torch.optim.X`` with its
  default implementation (single-tensor for-loop on CPU, ``foreach`` on CUDA);
- **compiled**: ``dlopt.torch.X(compile=True)`` vs ``torch.optim.X(fused=True)`` where torch has a
  fused kernel, else ``foreach=True``;
- **floor**: the memory-bandwidth floor of one step: bytes each optimizer must move per parameter
  (read parameter, gradient and state, write parameter and state) × parameters / the bandwidth of
  a large in-place ``add_`` measured in the same run.

Times are medians over ``--repeats`` steps after warm-up, the optimizers of a row timed in turn
(one step of each per round, so that drift of a shared machine cancels in the ratios); every ratio
compares numbers measured in this run. Compilation is slow on a small CPU, so by default
``compile=True`` is measured for every optimizer in the 1×10M layout and for Adam in the 100×100k
layout (``--compile-all`` for all, ``--no-compile`` for none). ``--quick`` uses 1M parameters and fewer repeats.

Run: ``python bench/bench_step_time.py`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import dlopt
import dlopt.torch as dt

# name -> (constructor kwargs, bytes moved per float32 parameter per step, torch has fused)
OPTIMIZERS = {
    "Adam": (dict(lr=1e-3), 7 * 4, True),            # read p g m v, write p m v
    "AdamW": (dict(lr=1e-3), 7 * 4, True),           # same, plus a scale of p in the same pass
    "SGD-momentum": (dict(lr=1e-3, momentum=0.9), 5 * 4, True),  # read p g b, write p b
    "RMSprop": (dict(lr=1e-3), 5 * 4, False),        # read p g v, write p v
    "Adagrad": (dict(lr=1e-2), 5 * 4, True),         # read p g G, write p G
}


def torch_class(module, name):
    return getattr(module, name.split("-")[0])


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, dev, repeats, warmup):
    for _ in range(warmup):
        fn()
    sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def bandwidth(dev, numel, repeats):
    """Bytes per second of an in-place ``a.add_(b)`` (two reads, one write) on large arrays.

    In place, like an optimizer step: writing into a separate output array would also pay for
    reading each output cache line before writing it (write-allocate), and understate the bandwidth.
    The two arrays hold ``2 * numel`` floats each: the footprint of Adam's four arrays (parameter,
    gradient, two moments), so a large last-level cache helps the floor as much as the optimizers.
    """
    n = 2 * numel
    a, b = (torch.rand(n, device=dev) for _ in range(2))
    ms = median_ms(lambda: a.add_(b, alpha=1e-12), dev, repeats, warmup=3)
    return 3 * 4 * n / (ms / 1e3)


def make_params(layout, numel, dev):
    count = 1 if layout == "1x" else 100
    gen = torch.Generator(device="cpu").manual_seed(0)
    params = []
    for _ in range(count):
        p = torch.randn(numel // count, generator=gen).to(dev)
        p.grad = (1e-2 * torch.randn(numel // count, generator=gen)).to(dev)
        params.append(p)
    return params


def time_interleaved(makers, layout, numel, dev, repeats, warmup):
    """Median step time (ms) of each optimizer in ``makers`` (name -> constructor of params), and
    the seconds its construction and warm-up took (compilation included).

    Every optimizer gets its own parameters; after the warm-up their steps are timed in turn, one
    step of each per round, so that a slow drift of the machine (other load, frequency changes)
    affects all of them alike instead of whichever happened to be measured last.
    """
    opts, setup = {}, {}
    for name, make in makers.items():
        params = make_params(layout, numel, dev)
        t0 = time.perf_counter()
        try:
            opts[name] = make(params)
            for _ in range(warmup):
                opts[name].step()
            sync(dev)
        except RuntimeError:  # e.g. a fused kernel torch does not have on this device
            opts.pop(name, None)
            continue
        setup[name] = time.perf_counter() - t0
    times = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            t0 = time.perf_counter()
            opt.step()
            sync(dev)
            times[name].append(time.perf_counter() - t0)
    return {name: (1e3 * statistics.median(t), setup[name]) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M parameters, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--numel", type=int, default=None, help="parameters (default 10M)")
    parser.add_argument("--compile-all", action="store_true", help="compile every optimizer and layout")
    parser.add_argument("--no-compile", action="store_true", help="skip compile=True")
    parser.add_argument("--only", nargs="*", default=None, help="optimizer names to run")
    args, _ = parser.parse_known_args(argv)  # bench/run.py passes its own filter words

    numel = args.numel or (1_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (5 if args.quick else 21)
    warmup = 3
    dev = dlopt.device(verbose=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {numel:,} parameters, "
          f"median of {repeats} steps after {warmup} warm-up steps")

    bw = bandwidth(dev, numel, repeats)
    print(f"memory bandwidth (in-place add_, 2 reads + 1 write): {bw / 1e9:.1f} GB/s\n")

    header = (f"{'optimizer':13s} {'layout':9s} {'floor':>7s} | {'dlopt':>8s} {'torch':>8s} {'ratio':>6s}"
              f" | {'compiled':>8s} {'fused':>8s} {'ratio':>6s} {'(torch)':8s} | {'compile s':>9s}")
    print("milliseconds per step; ratio = dlopt / torch (lower is better)")
    print(header)
    print("-" * len(header))
    rows = []
    for name, (kwargs, bytes_per_param, has_fused) in OPTIMIZERS.items():
        if args.only and name not in args.only:
            continue
        for layout in ("1x", "100x"):
            label = f"1x{numel // 1_000_000}M" if layout == "1x" else f"100x{numel // 100_000}k"
            floor = 1e3 * bytes_per_param * numel / bw
            fast_kw = dict(fused=True) if has_fused else dict(foreach=True)
            do_compile = not args.no_compile and (args.compile_all or layout == "1x" or name == "Adam")
            makers = {
                "eager": lambda ps: torch_class(dt, name)(ps, **kwargs),
                "default": lambda ps: torch_class(torch.optim, name)(ps, **kwargs),
                "fast": lambda ps: torch_class(torch.optim, name)(ps, **kwargs, **fast_kw),
            }
            if do_compile:
                makers["compiled"] = lambda ps: torch_class(dt, name)(ps, **kwargs, compile=True)
            res = time_interleaved(makers, layout, numel, dev, repeats, warmup)
            if "fast" not in res:  # e.g. Adagrad's fused kernel exists for CPU only
                has_fused, fast_kw = False, dict(foreach=True)
                res.update(time_interleaved({"fast": makers["fast"]}, layout, numel, dev, repeats, warmup))
            (eager, _), (default, _), (fast, _) = res["eager"], res["default"], res["fast"]
            if do_compile:
                compiled, compile_s = res["compiled"]
                comp = f"{compiled:8.2f} {fast:8.2f} {compiled / fast:6.2f}"
            else:
                compiled, compile_s = None, None
                comp = f"{'-':>8s} {fast:8.2f} {'-':>6s}"
            which = "fused" if has_fused else "foreach"
            print(f"{name:13s} {label:9s} {floor:7.2f} | {eager:8.2f} {default:8.2f} "
                  f"{eager / default:6.2f} | {comp} {which:8s} | "
                  f"{'' if compile_s is None else f'{compile_s:9.1f}'}", flush=True)
            rows.append(dict(optimizer=name, layout=label, floor=floor, eager=eager, default=default,
                             compiled=compiled, fast=fast, fast_kind=which))
    print("\nfloor = bytes per parameter per step × parameters / measured bandwidth; "
          "'compile s' includes compilation (warm-up)")
    return rows


if __name__ == "__main__":
    main()
