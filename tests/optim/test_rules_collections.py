"""Rules over parameter collections (a list or dict of arrays) and their input contracts."""

import numpy as np
import pytest

from dlopt import rules

HP = {"gd": dict(lr=0.1), "normalized_gd": dict(lr=0.1), "sgd": dict(lr=0.1, momentum=0.9, nesterov=True),
      "heavy_ball": dict(lr=0.1, beta=0.8), "nesterov": dict(lr=0.1, beta=0.8),
      "adagrad": dict(lr=0.1, lr_decay=0.01), "rmsprop": dict(lr=0.01, centered=True, momentum=0.5),
      "adadelta": dict(lr=1.0), "adam": dict(lr=0.01, amsgrad=True, weight_decay=0.1),
      "adamw": dict(lr=0.01), "nadam": dict(lr=0.01), "radam": dict(lr=0.01), "namsgrad": dict(lr=0.01)}


def _arrays(rng):
    return [rng.standard_normal((3, 2)), rng.standard_normal(4)]


@pytest.mark.parametrize("name", [n for n in rules.__all__ if n != "normalized_gd"])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_collection_steps_like_its_arrays_one_by_one(name, kind):
    rule, rng = getattr(rules, name), np.random.default_rng(0)
    params, singles = _arrays(rng), None
    singles = [p.copy() for p in params]
    state, states = {}, [{}, {}]
    for k in range(12):  # enough steps for RAdam's rectified branch too
        grads = [np.sin(p) + 0.1 * (k + 1) for p in params]
        if kind == "dict":
            rule(dict(zip("ab", params)), dict(zip("ab", grads)), state, **HP[name])
        else:
            rule(params, grads, state, **HP[name])
        for p, s in zip(singles, states):
            rule(p, np.sin(p) + 0.1 * (k + 1), s, **HP[name])
    for p, q in zip(params, singles):
        assert np.array_equal(p, q)
    for key, value in states[0].items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(state[key][0], value) and np.array_equal(state[key][1], states[1][key])


def test_normalized_gd_normalises_the_whole_collection():
    params = [np.array([3.0]), np.array([4.0])]
    rules.normalized_gd(params, [np.array([3.0]), np.array([4.0])], lr=1.0)
    np.testing.assert_allclose(np.concatenate(params), [3.0 - 0.6, 4.0 - 0.8])


def test_a_collection_of_tensors_matches_torch_optim():
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(3, 2, dtype=torch.float64, generator=gen), torch.randn(5, dtype=torch.float64, generator=gen)]
    ref = [p.clone().requires_grad_() for p in ps]
    opt = torch.optim.Adam(ref, lr=0.01, foreach=False)
    state = {}
    for k in range(10):
        grads = [torch.cos(p) * (k + 1) for p in ps]
        for r, g in zip(ref, grads):
            r.grad = g.clone()
        opt.step()
        rules.adam(ps, grads, state, lr=0.01)
    for p, r in zip(ps, ref):
        assert torch.equal(p, r.detach())


def test_clear_errors():
    x = np.zeros(2)
    with pytest.raises(TypeError, match="floating-point"):
        rules.gd(np.zeros(2, dtype=int), np.ones(2), lr=0.1)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        rules.adam([0.0, 0.0], [1.0, 1.0], {}, lr=0.1)
    with pytest.raises(TypeError, match="grad must be a list of 2"):
        rules.adam([x, x.copy()], [np.ones(2)], {}, lr=0.1)
    with pytest.raises(TypeError, match="same keys"):
        rules.adam({"a": x}, {"b": np.ones(2)}, {}, lr=0.1)
    with pytest.raises(ValueError, match="Invalid beta value: 1.5"):
        rules.heavy_ball(x, np.ones(2), {}, lr=0.1, beta=1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        rules.adam(x, np.ones(2), {}, lr=0.1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        rules.sgd(x, np.ones(2), {}, lr=-1)
