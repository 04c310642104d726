"""dlopt.torch: drop-in torch.optim classes over dlopt.rules (parity, state_dict, API)."""

from __future__ import annotations

import copy
import inspect

import pytest

from _optim_problem import Problem, rel_err

torch = pytest.importorskip("torch")
import dlopt  # noqa: E402
import dlopt.torch as dt  # noqa: E402

STEPS = 200
NAMES = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam", "RAdam"]

# (class name, defaults, overrides for the second parameter group)
GRID = [
    ("SGD", dict(lr=0.05), dict(lr=0.02, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), dict(momentum=0.5)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True), dict(weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01), dict(weight_decay=0.01, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.1, maximize=True, eps=1e-6), dict(lr=0.05)),
    ("RMSprop", dict(lr=0.002, centered=True, weight_decay=0.01), dict(lr=0.001)),
    ("RMSprop", dict(lr=0.003, momentum=0.5), dict(centered=True)),
    ("RMSprop", dict(lr=0.001, alpha=0.9, maximize=True), dict(momentum=0.9)),
    ("Adadelta", dict(weight_decay=0.01), dict(lr=0.5, rho=0.95)),
    ("Adadelta", dict(maximize=True), dict(eps=1e-4)),
    ("Adam", dict(lr=0.01), dict(amsgrad=True, betas=(0.8, 0.99))),
    ("Adam", dict(lr=0.01, weight_decay=0.01), dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", dict(lr=0.01, maximize=True, amsgrad=True), dict(eps=1e-6)),
    ("AdamW", dict(lr=0.01), dict(amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, maximize=True), dict(lr=0.005)),
    ("NAdam", dict(lr=0.01), dict(momentum_decay=0.01, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True), dict(lr=0.005)),
    ("NAdam", dict(lr=0.01, maximize=True), dict(betas=(0.8, 0.99))),
    ("RAdam", dict(lr=0.01), dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.01, maximize=True), dict(betas=(0.9, 0.9))),
]


def ids(case):
    name, defaults, group = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in {**defaults, **group}.items())


def make(cls, problem, defaults, group, dtype=torch.float64, device="cpu"):
    params = [torch.tensor(x, dtype=dtype, device=device) for x in problem.x0]
    opt = cls([{"params": params[:1]}, {"params": params[1:], **group}], **defaults)
    return params, opt


def set_grads(problem, params):
    grads = problem.grads([p.detach().cpu().double().numpy() for p in params])
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=p.dtype, device=p.device)


def run(params, opt, problem, steps):
    for _ in range(steps):
        set_grads(problem, params)
        opt.step()
    return [p.detach().cpu().double().numpy() for p in params]


@pytest.mark.parametrize("case", GRID, ids=ids)
def test_parity_with_torch_optim(case):
    name, defaults, group = case
    problem = Problem(maximize=defaults.get("maximize", False))
    ours = run(*make(getattr(dt, name), problem, defaults, group), problem, STEPS)
    theirs = run(*make(getattr(torch.optim, name), problem, defaults, group), problem, STEPS)
    assert rel_err(ours, problem.x0) > 1e-2, "the run did not move: the test would be vacuous"
    assert rel_err(ours, theirs) <= 1e-12


# torch.optim's foreach implementations round differently from its for-loop ones here: the
# foreach parity below is not the for-loop parity under another name
FOREACH_ROUNDS_DIFFERENTLY = {"NAdam", "RAdam"}


@pytest.mark.parametrize("case", GRID, ids=ids)
def test_foreach_parity_with_torch_optim_foreach(case):
    """foreach=True: the same rules on lists of tensors (torch._foreach_* ops), bit for bit
    torch.optim's multi-tensor implementation, which runs on CPU tensors too."""
    name, defaults, group = case
    problem = Problem(maximize=defaults.get("maximize", False))
    fe = dict(defaults, foreach=True)
    ours = run(*make(getattr(dt, name), problem, fe, group), problem, FOREACH_STEPS)
    theirs = run(*make(getattr(torch.optim, name), problem, fe, group), problem, FOREACH_STEPS)
    assert rel_err(ours, problem.x0) > 1e-2, "the run did not move: the test would be vacuous"
    assert rel_err(ours, theirs) == 0.0
    if name in FOREACH_ROUNDS_DIFFERENTLY:
        loop = run(*make(torch.optim.NAdam if name == "NAdam" else torch.optim.RAdam, problem,
                         dict(defaults, foreach=False), group), problem, FOREACH_STEPS)
        assert rel_err(ours, loop) > 0.0, "foreach and for-loop agree: the case tells nothing"


FOREACH_STEPS = 100


@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_foreach_default_follows_torch(name):
    """foreach=None is torch's default: the for-loop on CPU tensors, foreach on CUDA."""
    problem = Problem()
    results = {fe: run(*make(getattr(dt, name), problem, dict(lr=0.01, foreach=fe), {}), problem, 20)
               for fe in (None, False, True)}
    assert rel_err(results[None], results[False]) == 0.0
    assert rel_err(results[None], results[True]) > 0.0


@pytest.mark.parametrize("name", NAMES)
def test_foreach_when_some_tensors_missed_steps_and_dtypes_mix(name):
    """Tensors without a gradient at some steps fall behind in their step count, and a group mixes
    float64 and float32: the foreach step splits the group as torch does (device and dtype) and
    by step count, and still matches torch.optim's foreach implementation bit for bit."""
    problem = Problem()
    defaults = {"Adadelta": {}, "SGD": dict(lr=0.01, momentum=0.9)}.get(name, dict(lr=0.01))
    defaults["foreach"] = True
    runs = []
    for module in (dt, torch.optim):
        params = [torch.tensor(x, dtype=torch.float64 if i != 1 else torch.float32)
                  for i, x in enumerate(problem.x0)]
        opt = getattr(module, name)(params, **defaults)
        for k in range(12):
            set_grads(problem, params)
            if k < 3:
                params[2].grad = None   # the third tensor starts late: its step count lags
            opt.step()
        runs.append([p.detach().double().numpy() for p in params])
        if name != "SGD":  # (SGD keeps no step count)
            assert [float(opt.state[p]["step"]) for p in params] == [12, 12, 9]
    assert rel_err(*runs) == 0.0


@pytest.mark.parametrize("name", NAMES + ["NAMSGrad"])
def test_foreach_state_is_torch_optims(name):
    """The optimizer state of foreach=True has the for-loop's and torch.optim's entries, dtypes,
    shapes and devices: the same bytes of state per parameter."""
    problem = Problem()
    defaults = {"Adadelta": {}, "SGD": dict(lr=0.01, momentum=0.9)}.get(name, dict(lr=0.01))
    layouts = []
    for cls, fe in [(getattr(dt, name), True), (getattr(dt, name), False),
                    (getattr(torch.optim, name, None), True)]:
        if cls is None:  # NAMSGrad: not in torch.optim
            continue
        kwargs = dict(defaults, foreach=fe) if "foreach" in inspect.signature(cls).parameters else defaults
        params, opt = make(cls, problem, kwargs, {})
        run(params, opt, problem, 3)
        layouts.append({i: {key: (v.dtype, tuple(v.shape), v.device, v.nelement() * v.element_size())
                            for key, v in state.items()}
                        for i, state in opt.state_dict()["state"].items()})
    assert all(layout == layouts[0] for layout in layouts)
    assert len(layouts[0]) == len(problem.x0)


@pytest.mark.parametrize("name", NAMES)
def test_float32_autograd_training_matches_torch_optim(name):
    torch.manual_seed(0)
    X, y = torch.randn(64, 5), torch.randn(64, 1)
    results = []
    for module in (dt, torch.optim):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        opt = getattr(module, name)(model.parameters(), lr=1e-2)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            opt.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])


def test_namsgrad_class_is_the_rule():
    problem = Problem()
    params, opt = make(dt.NAMSGrad, problem, dict(lr=0.01, weight_decay=0.01), dict(lr=0.005))
    ours = run(params, opt, problem, 50)
    xs, states = [x.copy() for x in problem.x0], [{}, {}, {}]
    for _ in range(50):
        for i, (x, g, s) in enumerate(zip(xs, problem.grads(xs), states)):
            dlopt.rules.namsgrad(x, g, s, lr=0.01 if i == 0 else 0.005, weight_decay=0.01)
    assert rel_err(ours, xs) <= 1e-12


def test_lr_scheduler_drives_the_rule():
    problem = Problem()
    runs = []
    for module in (dt, torch.optim):
        params, opt = make(module.Adam, problem, dict(lr=0.02), {})
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: (k + 1) ** -0.5)
        for _ in range(50):
            set_grads(problem, params)
            opt.step()
            sched.step()
        runs.append([p.numpy() for p in params])
    assert rel_err(*runs) == 0.0


@pytest.mark.parametrize("name", NAMES + ["NAMSGrad"])
def test_resume_from_state_dict_is_bit_identical(name):
    problem = Problem()
    cls = getattr(dt, name)
    defaults = dict(lr=0.01) if name != "Adadelta" else {}
    straight = run(*make(cls, problem, defaults, dict(lr=0.005)), problem, 200)
    params, opt = make(cls, problem, defaults, dict(lr=0.005))
    run(params, opt, problem, 100)
    saved = copy.deepcopy(opt.state_dict())
    resumed_params = [p.detach().clone() for p in params]
    _, fresh = make(cls, problem, defaults, dict(lr=0.005))
    fresh = cls([{"params": resumed_params[:1]}, {"params": resumed_params[1:], "lr": 0.005}], **defaults)
    fresh.load_state_dict(saved)
    resumed = run(resumed_params, fresh, problem, 100)
    assert rel_err(straight, resumed) == 0.0
    # and the state dict has torch.optim's layout
    theirs = getattr(torch.optim, name, None)
    if theirs is not None:
        tparams, topt = make(theirs, problem, defaults, dict(lr=0.005))
        run(tparams, topt, problem, 100)
        ref = topt.state_dict()
        assert saved["param_groups"] == ref["param_groups"]
        assert saved["state"].keys() == ref["state"].keys()
        for i in ref["state"]:
            assert saved["state"][i].keys() == ref["state"][i].keys()
            for key, value in ref["state"][i].items():
                assert saved["state"][i][key].dtype == value.dtype, key
                assert saved["state"][i][key].shape == value.shape, key


@pytest.mark.parametrize("name", NAMES)
def test_load_a_torch_optim_state_dict(name):
    problem = Problem()
    defaults = dict(lr=0.01) if name != "Adadelta" else {}
    tparams, topt = make(getattr(torch.optim, name), problem, defaults, {})
    run(tparams, topt, problem, 100)
    params = [p.detach().clone() for p in tparams]
    ours = getattr(dt, name)([{"params": params[:1]}, {"params": params[1:]}], **defaults)
    ours.load_state_dict(copy.deepcopy(topt.state_dict()))
    a = run(params, ours, problem, 100)
    b = run(tparams, topt, problem, 100)
    # torch.optim's NAdam casts mu_product to the parameter dtype on load; dlopt keeps it as in an
    # uninterrupted run, so the two differ by float32 rounding of a scalar there
    assert rel_err(a, b) <= (1e-6 if name == "NAdam" else 1e-12)


INVALID = [
    ("SGD", dict(lr=-1.0)),
    ("SGD", dict(momentum=-0.1)),
    ("SGD", dict(weight_decay=-1)),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True)),
    ("SGD", dict(nesterov=True)),
    ("SGD", dict(lr=torch.tensor([0.1, 0.2]))),
    ("Adagrad", dict(lr=-0.5)),
    ("Adagrad", dict(lr_decay=-1.0)),
    ("Adagrad", dict(weight_decay=-1.0)),
    ("Adagrad", dict(initial_accumulator_value=-0.1)),
    ("Adagrad", dict(eps=-1e-10)),
    ("RMSprop", dict(lr=-0.01)),
    ("RMSprop", dict(alpha=-0.9)),
    ("RMSprop", dict(momentum=-0.1)),
    ("RMSprop", dict(eps=-1e-08)),
    ("Adadelta", dict(rho=1.5)),
    ("Adadelta", dict(eps=-1.0)),
    ("Adadelta", dict(weight_decay=-1)),
    ("Adam", dict(lr=-1.0)),
    ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, -0.1))),
    ("Adam", dict(eps=-1e-08)),
    ("Adam", dict(weight_decay=-1)),
    ("AdamW", dict(weight_decay=-0.01)),
    ("AdamW", dict(betas=(0.9, 1.0))),
    ("NAdam", dict(momentum_decay=-0.1)),
    ("NAdam", dict(betas=(-0.1, 0.9))),
    ("RAdam", dict(betas=(0.5, 1.0))),
    ("RAdam", dict(lr=-1e-3)),
]


@pytest.mark.parametrize("name, hp", INVALID, ids=[f"{n}-{list(h)}" for n, h in INVALID])
def test_validation_messages_equal_torch(name, hp):
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)(params, **hp)
    with pytest.raises(ValueError) as ours:
        getattr(dt, name)(params, **hp)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", NAMES + ["NAMSGrad"])
def test_sparse_gradients_are_refused(name):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    opt = getattr(dt, name)(emb.parameters())
    with pytest.raises(RuntimeError, match=f"^{name} does not support sparse gradients"):
        opt.step()


def test_complex_parameters_and_torch_only_flags_are_refused():
    p = torch.zeros(2, dtype=torch.complex128, requires_grad=True)
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="Adam does not support complex parameters"):
        dt.Adam([p]).step()
    for flag in ("fused", "capturable", "differentiable"):
        with pytest.raises(ValueError, match=f"does not implement {flag}=True"):
            dt.Adam([torch.zeros(2, requires_grad=True)], **{flag: True})
    with pytest.raises(ValueError, match="compile must be one of"):
        dt.Adam([torch.zeros(2, requires_grad=True)], compile="max-autotune")


def test_signatures_match_torch_optim():
    import inspect

    for name in NAMES:
        ours = inspect.signature(getattr(dt, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
        assert [(p.name, p.default, p.kind) for p in theirs.values()] == [
            (p.name, p.default, p.kind) for p in ours.values() if p.name != "compile"
        ]


def test_closure_step_and_zero_grad():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = dt.SGD([w], lr=0.1)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert calls == [1] and torch.is_tensor(loss) and loss.detach().item() == 5.0
    assert torch.allclose(w.detach(), torch.tensor([0.8, -1.6]))
    assert opt.step() is None
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and torch.all(w.grad == 0)
    opt.zero_grad()  # set_to_none=True is the default
    assert w.grad is None
    before = w.detach().clone()
    opt.step()  # no gradient: the parameter is skipped
    assert torch.equal(w.detach(), before)


def test_add_param_group_and_lazy_import():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = dt.Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.2, "amsgrad": True})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["amsgrad"]
    a.grad, b.grad = torch.ones(2), torch.ones(3)
    opt.step()
    assert torch.allclose(b, torch.full((3,), -0.2)) and "max_exp_avg_sq" in opt.state[b]
    assert isinstance(opt, torch.optim.Optimizer)
    assert dlopt.torch is dt


def test_importing_dlopt_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, dlopt; dlopt.run; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_torch_optim_for_loop(name, dtype):
    problem = Problem()
    defaults = dict(lr=0.01, foreach=False) if name != "Adadelta" else dict(foreach=False)
    ours = run(*make(getattr(dt, name), problem, defaults, {}, dtype, "cuda"), problem, 50)
    theirs = run(*make(getattr(torch.optim, name), problem, defaults, {}, dtype, "cuda"), problem, 50)
    assert rel_err(ours, theirs) <= (1e-12 if dtype == torch.float64 else 1e-5)


@cuda
@pytest.mark.parametrize("case", GRID, ids=ids)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_foreach_matches_torch_optim_foreach(case, dtype):
    """On CUDA the _foreach ops are real multi-tensor kernels: still torch.optim's foreach
    implementation bit for bit (float64; float32 to its rounding)."""
    name, defaults, group = case
    problem = Problem(maximize=defaults.get("maximize", False))
    fe = dict(defaults, foreach=True)
    ours = run(*make(getattr(dt, name), problem, fe, group, dtype, "cuda"), problem, 50)
    theirs = run(*make(getattr(torch.optim, name), problem, fe, group, dtype, "cuda"), problem, 50)
    assert rel_err(ours, theirs) <= (0.0 if dtype == torch.float64 else 1e-6)


@cuda
@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_cuda_foreach_is_the_default(name):
    problem = Problem()
    default = run(*make(getattr(dt, name), problem, dict(lr=0.01), {}, device="cuda"), problem, 20)
    fe = run(*make(getattr(dt, name), problem, dict(lr=0.01, foreach=True), {}, device="cuda"), problem, 20)
    assert rel_err(default, fe) == 0.0


@cuda
def test_cuda_compile_reduce_overhead_matches_eager():
    """compile="reduce-overhead" (CUDA graphs where inductor can use them) gives the eager step."""
    runs = []
    for compile in (False, "reduce-overhead"):
        params = [torch.linspace(-1, 1, 3000, device="cuda").reshape(30, 100),
                  torch.linspace(2, 3, 70, device="cuda")]
        grads = [torch.zeros_like(p) for p in params]
        for p, g in zip(params, grads):
            p.grad = g  # the same gradient tensors at every step: stable addresses
        opt = dt.AdamW(params, lr=0.01, compile=compile)
        for _ in range(6):
            for p in params:
                p.grad.copy_(torch.sin(3 * p) + p)
            opt.step()
        runs.append([p.cpu().numpy() for p in params])
    assert rel_err(*runs) <= 1e-5


@cuda
def test_cuda_state_dict_round_trip():
    problem = Problem()
    params, opt = make(dt.Adam, problem, dict(lr=0.01), {}, device="cuda")
    run(params, opt, problem, 10)
    sd = opt.state_dict()
    assert sd["state"][0]["exp_avg"].is_cuda and not sd["state"][0]["step"].is_cuda
    fresh = dt.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.01)
    fresh.load_state_dict(sd)
    assert fresh.state[params[0]]["exp_avg"].is_cuda


def test_compile_matches_eager_without_recompiling():
    """compile=True: the same rule, compiled; a new step or learning rate is not a recompilation."""
    import torch._dynamo

    torch._dynamo.reset()
    torch.manual_seed(0)
    runs = []
    for compile in (False, True):
        params = [torch.linspace(-1, 1, 300).reshape(30, 10), torch.linspace(2, 3, 7)]
        opt = dt.Adam([{"params": params[:1]}, {"params": params[1:], "amsgrad": True}], lr=0.01,
                      weight_decay=0.01, compile=compile)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: (k + 1) ** -0.5)
        for k in range(6):
            if compile and k == 2:  # first step eager, second compiles; no compilation after that
                torch._dynamo.config.error_on_recompile = True
            for p in params:
                p.grad = torch.sin(3 * p) + p
            try:
                opt.step()
            finally:
                torch._dynamo.config.error_on_recompile = False
            sched.step()
        runs.append([p.numpy().copy() for p in params])
    assert rel_err(*runs) <= 1e-5
    assert rel_err(runs[0], [torch.linspace(-1, 1, 300).reshape(30, 10).numpy(),
                             torch.linspace(2, 3, 7).numpy()]) > 1e-3


def test_compile_chunks_of_one_layout_compile_once(monkeypatch):
    """compile=True compiles a group in chunks of COMPILE_CHUNK tensors; chunks of one layout
    share one compiled graph (1000 tensors of one shape compile like 100)."""
    from dlopt.optim.torch import optimizers

    monkeypatch.setattr(optimizers, "COMPILE_CHUNK", 2)
    runs = []
    for compile in (False, True):
        params = [torch.linspace(-1, 1, 6) + k for k in range(4)]
        opt = dt.SGD(params, lr=0.1, momentum=0.9, compile=compile)
        before = len(optimizers._compiled_steps)
        for _ in range(4):
            for p in params:
                p.grad = torch.sin(3 * p)
            opt.step()
        runs.append([p.numpy().copy() for p in params])
        if compile:
            assert len(opt._compiled_chunks) == 2
            assert len(optimizers._compiled_steps) - before <= 1  # one layout: one graph
    assert rel_err(*runs) <= 1e-6


@cuda
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_cuda_compile_matches_eager(name):
    runs = []
    for compile in (False, True):
        params = [torch.linspace(-1, 1, 3000, device="cuda").reshape(30, 100),
                  torch.linspace(2, 3, 70, device="cuda")]
        kwargs = dict(momentum=0.9) if name == "SGD" else {}
        opt = getattr(dt, name)(params, lr=0.01, compile=compile, **kwargs)
        for _ in range(5):
            for p in params:
                p.grad = torch.sin(3 * p) + p
            opt.step()
        runs.append([p.cpu().numpy() for p in params])
    assert rel_err(*runs) <= 1e-5


def test_numpy_rules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, dlopt; from dlopt import rules, functions; "
            "dlopt.run(rules.adam, functions.Rosenbrock(), [-1.0, 1.5], steps=5, lr=1e-2); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
