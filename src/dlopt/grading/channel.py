"""The call channel between the check driver (trusted) and the student's process (untrusted).

While grading, a check cell runs in the *driver*: a sandboxed process that ran the source
notebook's cells (the instructor's code) and holds the check's code, its inputs and whatever the
check computes. Each name the student provides (see :func:`dlopt.grading.problemset.student_names`)
is a :class:`Remote` there; calling it sends the function's name and its arguments to the student's
process, which runs the student's function and sends the value back. The student's process never
receives a check's source, the inputs of a call before that call is made, or reference values.

Messages are JSON lines (one object per line) over two pipes, at most ``max_message`` bytes each:

- a request ``{"id": n, "op": ..., ...}``; the reply ``{"re": n, "ok": value}`` or
  ``{"re": n, "err": {"type": name, "mro": [names], "msg": text}}``;
- values are :func:`encode`\\d: JSON numbers, strings, bools, ``None`` and lists; a tuple
  ``{"__tuple__": [...]}``; a dict ``{"__dict__": [[key, value], ...]}``; a float that JSON cannot
  write ``{"__float__": "nan" | "inf" | "-inf"}``; a numpy array or scalar
  ``{"__nd__": [dtype, shape, base64 of the bytes]}`` (booleans, integers and floats of at most
  8 bytes, little-endian); anything else a *handle* ``{"__ref__": id, "type": name, "call": bool}``
  that the other side calls through a :class:`Remote` (the object itself never leaves its
  process); ``{"__yours__": id}`` hands an object back to the process that owns it. From the
  driver only, an object of the book's own classes (``functions.TwoBasin()``, its ``grad``
  method) travels as a copy ``{"__obj__": pickle}``: the student could build it too, and calling a
  copy is faster than a call back per step. The driver never unpickles anything.

Arguments are copies: a function that changes an argument in place changes its own copy. A
:class:`Remote` forwards calls, attributes, items, ``len`` and iteration, not operators.

Everything :func:`decode` reads is validated (tags, dtypes, shapes against the byte count, depth),
and nothing is unpickled. Either side answers the other's requests while it waits for a reply, so
a student's function can call a function it was given (``adam_path(f.grad, ...)``) and that
function can call the student's functions in turn. The driver answers only ``call`` on a handle it
gave out during the current check and ``getattr`` of a public attribute (no leading ``_``) of such
an object; a module is never handed out.
"""

from __future__ import annotations

import base64
import json
import math
import os
import pickle
import signal
import types
from typing import Any, Callable

import numpy as np

__all__ = ["Endpoint", "Remote", "RemoteError", "Gone", "ProtocolError", "encode", "decode"]

MAX_MESSAGE = 32 * 2**20
MAX_DEPTH = 60
_DTYPES = {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8"}


class ProtocolError(Exception):
    """A message that is not what the protocol allows."""


class Gone(Exception):
    """The other process closed the channel (it ended or was killed)."""


class RemoteError(Exception):
    """An exception raised on the other side: its class name, the names of its classes, its text."""

    def __init__(self, name: str, mro: list, message: str):
        super().__init__(message)
        self.name, self.mro, self.message = name, mro, message

    def __str__(self) -> str:
        return self.message


def _str(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


# ----------------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------------
def encode(value: Any, endpoint: "Endpoint | None" = None, depth: int = 0):
    """``value`` as JSON-able data; objects that are not data become handles of ``endpoint``
    (without one they raise ``TypeError``)."""
    if depth > MAX_DEPTH:
        raise TypeError("value is nested too deeply to be data")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and type(value) is not bool:
        return int(value)
    if isinstance(value, float):
        x = float(value)
        if math.isnan(x):
            return {"__float__": "nan"}
        if math.isinf(x):
            return {"__float__": "inf" if x > 0 else "-inf"}
        return x
    if isinstance(value, Remote) and endpoint is not None and object.__getattribute__(value, "_ep") is endpoint:
        return {"__yours__": object.__getattribute__(value, "_ref")}
    if hasattr(type(value), "detach") and hasattr(type(value), "cpu") and hasattr(type(value), "numpy"):
        value = value.detach().cpu().numpy()  # a torch tensor
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biuf" and value.dtype.itemsize <= 8:
        arr = np.asarray(value)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)  # tobytes() below is C order
        return {"__nd__": [arr.dtype.str, list(arr.shape), base64.b64encode(arr.tobytes()).decode("ascii")]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, endpoint, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, endpoint, depth + 1) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, endpoint, depth + 1), encode(v, endpoint, depth + 1)]
                             for k, v in value.items()]}
    if endpoint is None or isinstance(value, types.ModuleType):
        raise TypeError(f"{type(value).__name__} objects cannot be sent")
    if endpoint.by_value and _book_object(value):
        try:  # an object of the book's own classes (a problem, f.grad): a copy is faster than a handle
            return {"__obj__": base64.b64encode(pickle.dumps(value, protocol=5)).decode("ascii")}
        except Exception:  # noqa: BLE001 - what cannot be pickled goes by handle
            pass
    return endpoint.handle_of(value)


def _book_object(value) -> bool:
    """An instance of a class of the ``dlopt`` package (its grader excepted), a method of one, or a
    function of the package: sent by value from the driver, since the student could build it too."""
    def ours(module) -> bool:
        return (isinstance(module, str) and (module == "dlopt" or module.startswith("dlopt."))
                and not module.startswith("dlopt.grading"))

    if isinstance(value, types.MethodType):
        return ours(getattr(value.__func__, "__module__", None)) and _book_object(value.__self__)
    if isinstance(value, types.FunctionType):
        return ours(value.__module__) and value.__name__ != "<lambda>" and "<locals>" not in value.__qualname__
    return ours(type(value).__module__)


def decode(data, endpoint: "Endpoint", depth: int = 0):
    """The value a message stands for; :class:`ProtocolError` for anything the format does not allow."""
    if depth > MAX_DEPTH:
        raise ProtocolError("nested too deeply")
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        return [decode(v, endpoint, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) != 1 and "__ref__" not in data:
        raise ProtocolError("not a value")
    if "__float__" in data:
        text = data["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise ProtocolError("bad float")
        return float(text)
    if "__tuple__" in data and isinstance(data["__tuple__"], list):
        return tuple(decode(v, endpoint, depth + 1) for v in data["__tuple__"])
    if "__dict__" in data and isinstance(data["__dict__"], list):
        out = {}
        for pair in data["__dict__"]:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ProtocolError("bad dict")
            key = decode(pair[0], endpoint, depth + 1)
            try:
                out[key] = decode(pair[1], endpoint, depth + 1)
            except TypeError as exc:  # an unhashable key
                raise ProtocolError("bad dict key") from exc
        return out
    if "__nd__" in data:
        spec = data["__nd__"]
        if not (isinstance(spec, list) and len(spec) == 3 and spec[0] in _DTYPES and isinstance(spec[1], list)
                and len(spec[1]) <= 32 and all(type(n) is int and n >= 0 for n in spec[1])
                and isinstance(spec[2], str)):
            raise ProtocolError("bad array")
        try:
            raw = base64.b64decode(spec[2].encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError) as exc:
            raise ProtocolError("bad array bytes") from exc
        dtype = np.dtype(spec[0])
        if math.prod(spec[1]) * dtype.itemsize != len(raw):
            raise ProtocolError("array shape and bytes disagree")
        arr = np.frombuffer(raw, dtype=dtype).reshape(spec[1]).astype(dtype.newbyteorder("="))
        return arr[()] if arr.ndim == 0 else arr
    if "__yours__" in data:
        return endpoint.own(data["__yours__"])
    if "__obj__" in data and endpoint.accept_objects and isinstance(data["__obj__"], str):
        return pickle.loads(base64.b64decode(data["__obj__"]))  # noqa: S301 - from the trusted driver only
    if "__ref__" in data:
        ref, name, call = data.get("__ref__"), data.get("type"), data.get("call")
        if type(ref) is not int or not isinstance(name, str) or not isinstance(call, bool) or len(data) != 3:
            raise ProtocolError("bad handle")
        return Remote(endpoint, ref, name[:100], call)
    raise ProtocolError("not a value")


class Remote:
    """An object of the other process: calls, attributes, items, ``len`` and iteration are
    forwarded; anything else (arithmetic, comparisons) is not an operation of the protocol."""

    __slots__ = ("_ep", "_ref", "_type", "_call")

    def __init__(self, endpoint: "Endpoint", ref: int, type_name: str, call: bool):
        object.__setattr__(self, "_ep", endpoint)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_call", call)

    def _ask(self, op: str, **fields):
        ref = object.__getattribute__(self, "_ref")
        return object.__getattribute__(self, "_ep").request(dict(fields, op=op, ref=ref))

    def __call__(self, *args, **kwargs):
        return self._ask("call", args=list(args), kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __getitem__(self, key):
        return self._ask("getitem", key=key)

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of the other side's object is not a count")
        return n

    def __iter__(self):
        items = self._ask("list")
        if not isinstance(items, list):
            raise TypeError("the other side's object is not iterable")
        return iter(items)

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_type')} object of the other process>"


# ----------------------------------------------------------------------------------------------
# The channel
# ----------------------------------------------------------------------------------------------
class Endpoint:
    """One side of the channel. ``serve(op, message)`` answers the other side's requests."""

    def __init__(self, rfd: int, wfd: int, serve: Callable[[str, dict], Any], *, max_message: int = MAX_MESSAGE):
        self.rfd, self.wfd, self.serve = rfd, wfd, serve
        self.max_message = max_message
        self.buf = bytearray()
        self.skipping = False
        self.next_id = 0
        self.handles: dict = {}
        self.owner = os.getpid()
        self.closed = False
        self.deadline: Callable[[], float] | None = None  # seconds the other side may take for a call
        self.fatal: tuple = ()       # exceptions that end a call being answered too (the time limit)
        self.stuck = False           # a request was given up on for a fatal exception
        self.by_value = False        # driver: send objects of the book's classes as copies
        self.accept_objects = False  # student: take such copies (pickles come only from the driver)

    # handles of this side's objects
    def handle_of(self, obj) -> dict:
        ref = len(self.handles) + 1
        while ref in self.handles:
            ref += 1
        self.handles[ref] = obj
        return {"__ref__": ref, "type": type(obj).__name__[:100], "call": callable(obj)}

    def own(self, ref):
        if type(ref) is not int or ref not in self.handles:
            raise ProtocolError("unknown handle")
        return self.handles[ref]

    def forget_handles(self) -> None:
        self.handles.clear()

    # framing
    def dump(self, message: dict) -> bytes:
        data = (json.dumps(message, allow_nan=False) + "\n").encode()
        if len(data) > self.max_message:
            raise ValueError(f"the message is larger than the {self.max_message >> 20} MB limit")
        return data

    def send(self, message: dict | bytes) -> None:
        if os.getpid() != self.owner:  # a forked child of the student never speaks on the channel
            os._exit(0)
        data = message if isinstance(message, bytes) else self.dump(message)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # never half a message
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.wfd, view):]
        except OSError as exc:
            raise Gone() from exc
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def receive(self) -> dict | None:
        """The next message; ``None`` for a line that is not a JSON object or is too long."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                if self.skipping:
                    self.skipping = False
                    return None
                try:
                    message = json.loads(line, parse_constant=lambda c: None)
                except (ValueError, RecursionError):
                    return None
                return message if isinstance(message, dict) else None
            if len(self.buf) > self.max_message:
                self.buf.clear()
                self.skipping = True
            try:
                chunk = os.read(self.rfd, 1 << 20)
            except OSError as exc:
                raise Gone() from exc
            if not chunk:
                self.closed = True
                raise Gone()
            self.buf += chunk

    # requests and replies
    def request(self, message: dict):
        """Send a request and wait for its reply, answering the other side's requests meanwhile."""
        self.next_id += 1
        rid = self.next_id
        for key in ("args", "kwargs", "key"):
            if key in message:
                message[key] = encode(message[key], self)
        message["id"] = rid
        if self.deadline is not None:
            message["t"] = self.deadline()
        try:
            return self._wait(message, rid)
        except self.fatal:
            self.stuck = True  # the other side did not answer in time
            raise

    def _wait(self, message: dict, rid: int):
        self.send(message)
        while True:
            got = self.receive()
            if got is None:
                continue
            if "re" in got:
                if got["re"] != rid:
                    continue  # the late reply of a call that was given up (a time-out)
                if "err" in got:
                    err = got["err"] if isinstance(got["err"], dict) else {}
                    mro = err["mro"] if isinstance(err.get("mro"), list) else []
                    raise RemoteError(_str(err.get("type"), 100) or "Exception",
                                      [_str(m, 100) for m in mro[:20]], _str(err.get("msg"), 400))
                try:
                    return decode(got.get("ok"), self)
                except (ProtocolError, RecursionError) as exc:
                    raise RemoteError("ProtocolError", ["ProtocolError"],
                                      f"the value sent back is not data ({exc})") from None
            elif type(got.get("id")) is int and isinstance(got.get("op"), str):
                self.answer(got)

    def answer(self, message: dict) -> None:
        """Run one request of the other side and send its reply."""
        rid = message["id"]
        try:
            result = self.serve(message["op"], message)
        except (Gone, *self.fatal):  # e.g. the time limit of the call this one was made within
            raise
        except BaseException as exc:  # noqa: BLE001 - whatever the served code raises goes back
            self.send({"re": rid, "err": describe_error(exc)})
            return
        try:
            data = self.dump({"re": rid, "ok": encode(result, self)})
        except (TypeError, ValueError, RecursionError, OverflowError) as exc:
            err = describe_error(exc)
            err["msg"] = f"the value could not be sent as data ({err['msg']})"[:400]
            data = self.dump({"re": rid, "err": err})
        self.send(data)

    def args_of(self, message: dict) -> tuple[list, dict]:
        args = decode(message.get("args", []), self)
        kwargs = decode(message.get("kwargs", {"__dict__": []}), self)
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise ProtocolError("bad arguments")
        return args, kwargs


def describe_error(exc: BaseException, limit: int = 400) -> dict:
    """What an exception looks like on the wire (class names and text, never the object)."""
    if isinstance(exc, RemoteError):
        return {"type": exc.name, "mro": exc.mro, "msg": exc.message}
    name = type(exc).__name__
    if name == "_Timeout":
        return {"type": "TimeoutError", "mro": ["TimeoutError", "OSError", "Exception", "BaseException"],
                "msg": "TimeoutError: time limit exceeded"}
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001
        text = "<unprintable>"
    text = f"{name}: {text}" if text else name
    try:
        mro = [c.__name__ for c in type(exc).__mro__][:20]
    except BaseException:  # noqa: BLE001
        mro = [name]
    return {"type": name[:100], "mro": [str(m)[:100] for m in mro], "msg": text[:limit]}
