"""dlopt.torch.LBFGS: a drop-in for torch.optim.LBFGS on the shared two-loop / strong-Wolfe code."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dlopt.linesearch  # noqa: E402
import dlopt.secondorder  # noqa: E402
import dlopt.torch.lbfgs  # noqa: E402
from dlopt import functions  # noqa: E402
from dlopt.torch import LBFGS  # noqa: E402


def objective_problems():
    rng = np.random.default_rng(0)
    quad = functions.Quadratic.from_condition_number(100, n=20, seed=1, b=rng.standard_normal(20))
    return [
        (functions.Rosenbrock(2), [-1.2, 1.0]),
        (functions.Rosenbrock(10), [-1.2, 1.0] * 5),
        (functions.Beale(), [1.0, 1.0]),
        (functions.PowellSingular(), [3.0, -1.0, 0.0, 1.0]),
        (quad, [0.0] * 20),
    ]


def run_objective(cls, f, x0, steps, **kw):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = cls([x], **kw)

    def closure():
        opt.zero_grad()
        loss = f.value(x)
        loss.backward()
        return loss

    xs, losses = [], []
    for _ in range(steps):
        losses.append(opt.step(closure).item())
        xs.append(x.detach().clone())
    return torch.stack(xs), np.array(losses), opt


SETTINGS = [
    dict(line_search_fn=None),
    dict(line_search_fn="strong_wolfe"),
    dict(line_search_fn="strong_wolfe", history_size=3, max_iter=7, lr=0.8),
    dict(line_search_fn=None, history_size=5, max_iter=4, lr=0.5),
]


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_reproduces_torch_iterates_in_float64(kw):
    for f, x0 in objective_problems():
        ours, our_losses, opt = run_objective(LBFGS, f, x0, 12, **kw)
        theirs, their_losses, ref = run_objective(torch.optim.LBFGS, f, x0, 12, **kw)
        # to the last bit: torch rounds some of its line search's scalars as 0-d tensors (a number
        # divided by a tensor is multiplied by its reciprocal), and the drop-in must too
        assert torch.equal(ours, theirs), f.name
        np.testing.assert_array_equal(our_losses, their_losses)
        ours_state, theirs_state = opt.state[opt._params[0]], ref.state[ref._params[0]]
        assert ours_state["func_evals"] == theirs_state["func_evals"]
        assert ours_state["n_iter"] == theirs_state["n_iter"]
        assert len(ours_state["old_dirs"]) == len(theirs_state["old_dirs"])


def make_model():
    torch.manual_seed(0)
    X = torch.randn(64, 5, dtype=torch.float64)
    y = (X @ torch.randn(5, dtype=torch.float64) > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    return model, X, y


def train(cls, model, X, y, steps, **kw):
    opt = cls(model.parameters(), **kw)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        return loss

    return [opt.step(closure).item() for _ in range(steps)], opt


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_reproduces_torch_on_a_small_network(line_search_fn):
    model, X, y = make_model()
    theirs_model = copy.deepcopy(model)
    ours, _ = train(LBFGS, model, X, y, 5, line_search_fn=line_search_fn, history_size=10)
    theirs, _ = train(torch.optim.LBFGS, theirs_model, X, y, 5, line_search_fn=line_search_fn, history_size=10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    for p, q in zip(model.parameters(), theirs_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
    assert ours[-1] < ours[0]


def test_state_dict_round_trip_and_torch_compatibility():
    kw = dict(line_search_fn="strong_wolfe", history_size=4, max_iter=3)
    model, X, y = make_model()
    straight = copy.deepcopy(model)
    full, _ = train(LBFGS, straight, X, y, 6, **kw)

    first, opt = train(LBFGS, model, X, y, 3, **kw)
    saved = copy.deepcopy(opt.state_dict())
    resumed_model = copy.deepcopy(model)
    opt2 = LBFGS(resumed_model.parameters(), **kw)
    opt2.load_state_dict(saved)
    assert set(opt2.state_dict()["state"][0]) >= {"d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                                   "prev_flat_grad", "prev_loss", "func_evals", "n_iter"}

    def closure():
        opt2.zero_grad()
        loss = torch.nn.functional.cross_entropy(resumed_model(X), y)
        loss.backward()
        return loss

    rest = [opt2.step(closure).item() for _ in range(3)]
    np.testing.assert_allclose(first + rest, full, rtol=1e-12)

    # a torch.optim.LBFGS state dict loads into dlopt's and continues as torch would
    tmodel = copy.deepcopy(model)
    _, topt = train(torch.optim.LBFGS, copy.deepcopy(make_model()[0]), X, y, 3, **kw)
    ours = LBFGS(tmodel.parameters(), **kw)
    ours.load_state_dict(topt.state_dict())
    assert ours.state[ours._params[0]]["n_iter"] == topt.state[topt._params[0]]["n_iter"]


def test_shares_the_algorithm_with_secondorder():
    """No second copy: the class uses the very functions of dlopt.secondorder / dlopt.linesearch."""
    assert dlopt.torch.lbfgs.two_loop is dlopt.secondorder.two_loop
    assert dlopt.torch.lbfgs.lbfgs_remember is dlopt.secondorder.lbfgs_remember
    assert dlopt.torch.lbfgs.strong_wolfe is dlopt.linesearch.strong_wolfe
    src = open(dlopt.torch.lbfgs.__file__).read()
    assert "_cubic_interpolate" not in src and "for i in range(num_old" not in src


def test_float32_and_convergence():
    f = functions.Rosenbrock()
    x = torch.tensor([-1.2, 1.0], dtype=torch.float32, requires_grad=True)
    opt = LBFGS([x], line_search_fn="strong_wolfe", max_iter=100)

    def closure():
        opt.zero_grad()
        loss = f.value(x)
        loss.backward()
        return loss

    opt.step(closure)
    assert x.dtype == torch.float32
    torch.testing.assert_close(x.detach(), torch.ones(2), atol=1e-3, rtol=0)


def test_bad_arguments():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        LBFGS([p], lr=-1.0)
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        LBFGS([p], lr=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="parameter groups"):
        LBFGS([{"params": [p]}, {"params": [torch.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="strong_wolfe"):
        LBFGS([p], line_search_fn="backtracking")
    with pytest.raises(RuntimeError, match="closure"):
        LBFGS([p]).step(None)


def test_defaults_match_torch():
    import inspect

    ours = inspect.signature(LBFGS.__init__).parameters
    theirs = inspect.signature(torch.optim.LBFGS.__init__).parameters
    assert list(ours) == list(theirs)
    assert all(ours[k].default == theirs[k].default for k in ours if k not in ("self", "params"))
    p = torch.zeros(2, requires_grad=True)
    assert LBFGS([p]).defaults == torch.optim.LBFGS([p]).defaults
