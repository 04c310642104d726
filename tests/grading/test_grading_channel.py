"""The call channel between the check driver and the student's process (dlopt.grading.channel).

In-process tests of the protocol: values survive the trip, anything malformed is refused without
unpickling or guessing, calls nest both ways, and the driver answers only what it allows.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from dlopt.grading.channel import Endpoint, Gone, ProtocolError, Remote, RemoteError, decode, encode
from dlopt.grading.problemset import student_names


def _endpoint():
    return Endpoint(-1, -1, lambda op, m: None)


@pytest.mark.parametrize("value", [
    None, True, 3, -2**70, 2.5, float("inf"), "text \u00e9", [1, [2.0, None]], (1, "a"), {"a": 1, 2: [3]},
    np.arange(6.0).reshape(2, 3).T, np.zeros((0, 4), dtype=np.int32), np.array([True, False]),
    np.float32(1.5), np.int64(-7), np.arange(3, dtype=">f8"),
])
def test_values_survive_the_trip(value):
    ep = _endpoint()
    got = decode(json.loads(json.dumps(encode(value, ep))), ep)
    if isinstance(value, (np.ndarray, np.generic)):
        assert type(got) is type(value) or isinstance(got, np.ndarray)
        assert np.shape(got) == np.shape(value) and np.array_equal(got, value)
        assert np.asarray(got).dtype == np.asarray(value).dtype.newbyteorder("=")
    else:
        assert got == value and type(got) is type(value)
    assert np.isnan(decode(encode(float("nan"), ep), ep))


@pytest.mark.parametrize("data", [
    {"__nd__": ["|O", [1], "AA=="]},                        # object arrays are never decoded
    {"__nd__": ["<f8", [2], "AAAAAAAAAAA="]},               # 8 bytes for 2 doubles
    {"__nd__": ["<f8", [-1], ""]},
    {"__nd__": ["<f8", [2**40, 2**40], ""]},                # a shape the bytes do not back
    {"__nd__": ["<f8", [1], "not base64!"]},
    {"__nd__": ["<c16", [1], "A" * 24]},                    # complex: not data
    {"__float__": "1e999"},
    {"__ref__": "1", "type": "f", "call": True},
    {"__ref__": 1, "type": "f", "call": True, "extra": 1},
    {"__yours__": 99},                                     # a handle this side never gave out
    {"__dict__": [[[1], 2]]},                               # an unhashable key
    {"__pickle__": "gASV"},
    {"a": 1},                                              # a plain JSON object is not a value
])
def test_malformed_values_are_refused(data):
    with pytest.raises(ProtocolError):
        decode(data, _endpoint())


def test_depth_is_bounded():
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(TypeError, match="nested too deeply"):
        encode(deep, _endpoint())
    text = "[" * 100 + "]" * 100
    with pytest.raises(ProtocolError):
        decode(json.loads(text), _endpoint())


def test_objects_become_handles_modules_never():
    ep = _endpoint()

    class Model:
        pass

    handle = encode(Model(), ep)
    assert handle == {"__ref__": 1, "type": "Model", "call": False}
    assert encode(len, ep)["call"] is True
    with pytest.raises(TypeError):
        encode(os, ep)
    with pytest.raises(TypeError):
        encode(Model(), None)


def _pair(student_serve):
    """A driver endpoint and a student endpoint served by a thread, over two pipes."""
    a, b = os.pipe(), os.pipe()
    holder: dict = {}
    student = Endpoint(a[0], b[1], lambda op, m: student_serve(holder["ep"], op, m))
    holder["ep"] = student

    def loop():
        try:
            while True:
                msg = student.receive()
                if msg is not None and type(msg.get("id")) is int:
                    student.answer(msg)
        except Gone:
            os.close(b[1])

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def driver_serve(op, m):
        target = driver.own(m.get("ref"))
        if op == "call":
            args, kwargs = driver.args_of(m)
            return target(*args, **kwargs)
        raise ProtocolError(op)

    driver = Endpoint(b[0], a[1], driver_serve)
    return driver, thread, a, b


def test_calls_nest_both_ways_and_errors_come_back_by_name():
    namespace = {
        "time_granted": lambda lr, K: sum(lr(k) for k in range(K)),
        "cosine": lambda k: 0.5 * k,
        "boom": lambda: (_ for _ in ()).throw(ValueError("x must be positive")),
        "shape": lambda x: (x.shape, x.dtype.str),
    }

    def serve(ep, op, m):
        if op == "get":
            return namespace[m["name"]]
        target = ep.own(m["ref"])
        args, kwargs = ep.args_of(m)
        return target(*args, **kwargs)

    driver, thread, a, b = _pair(serve)
    time_granted = driver.request({"op": "get", "name": "time_granted"})
    cosine = driver.request({"op": "get", "name": "cosine"})
    assert isinstance(time_granted, Remote)
    # the student's time_granted calls the driver's lambda, which calls the student's cosine
    assert time_granted(lambda k: cosine(k) + 1, 4) == 0.5 * 6 + 4
    with pytest.raises(RemoteError) as err:
        driver.request({"op": "get", "name": "boom"})()
    assert err.value.name == "ValueError" and "ValueError" in err.value.mro and "positive" in str(err.value)
    assert driver.request({"op": "get", "name": "shape"})(np.ones((2, 3), dtype=np.float32)) == ((2, 3), "<f4")
    os.close(a[1])
    thread.join(5)
    assert not thread.is_alive()


def test_oversized_and_garbage_replies_are_refused():
    a, b = os.pipe(), os.pipe()
    driver = Endpoint(b[0], a[1], lambda op, m: None, max_message=1024)
    os.write(b[1], b"x" * 5000 + b"\n" + b"not json\n" + b'{"re": 1, "ok": {"__nd__": ["|O", [1], "AA=="]}}\n')
    with pytest.raises(RemoteError, match="not data"):
        driver.request({"op": "get", "name": "f"})
    os.write(b[1], b'{"re": 2, "ok": [1, 2]}\n')
    assert driver.request({"op": "get", "name": "f"}) == [1, 2]
    os.close(b[1])
    with pytest.raises(Gone):
        driver.request({"op": "get", "name": "f"})


def test_student_names_follow_the_data():
    cells = ["import numpy as np\nA = np.eye(2)",
             "def helper(x):\n    return 2 * x",
             "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
             "table = [square(v) for v in range(3)]\nimport math",
             "unrelated = helper(1)"]
    assert student_names(cells) == {"square", "table"}


def test_book_objects_go_by_value_from_the_driver_only():
    from dlopt import functions

    f = functions.TwoBasin()
    driver, student = _endpoint(), _endpoint()
    driver.by_value, student.accept_objects = True, True
    copy = decode(json.loads(json.dumps(encode(f.grad, driver))), student)
    assert not isinstance(copy, Remote) and np.allclose(copy(np.array([0.3])), f.grad(np.array([0.3])))
    assert "__ref__" in encode(lambda x: x, driver)          # a check's own function: a handle
    with pytest.raises(ProtocolError):                         # the driver never unpickles
        decode(encode(f, driver), _endpoint())
    assert "__ref__" in encode(f, _endpoint())               # and the student never sends pickles
