"""Smelt, a deep-learning graph compiler, from Python.

The API follows ONNX Runtime's ``InferenceSession`` so that a user can swap it in::

    import numpy as np, smelt
    session = smelt.Session("resnet18.onnx")
    name = session.get_inputs()[0].name
    (logits,) = session.run(None, {name: np.zeros((1, 3, 224, 224), np.float32)})

``report``, ``plan`` and ``tune`` return the dictionaries ``smelt report --json``,
``smelt plan --json`` and ``smelt tune --json`` print.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import InputError, SmeltError

__all__ = ["Session", "NodeArg", "report", "plan", "tune", "SmeltError", "InputError"]

# Smelt's element type names and numpy's dtypes, both ways.
_TO_NUMPY = {
    "f32": np.float32,
    "f64": np.float64,
    "f16": np.float16,
    "i64": np.int64,
    "i32": np.int32,
    "i16": np.int16,
    "i8": np.int8,
    "ui64": np.uint64,
    "ui32": np.uint32,
    "ui16": np.uint16,
    "ui8": np.uint8,
    "i1": np.bool_,
}
_FROM_NUMPY = {np.dtype(v).str: k for k, v in _TO_NUMPY.items()}

# ONNX Runtime's type strings, for NodeArg.type.
_ONNX_TYPES = {
    "f32": "tensor(float)",
    "f64": "tensor(double)",
    "f16": "tensor(float16)",
    "bf16": "tensor(bfloat16)",
    "i64": "tensor(int64)",
    "i32": "tensor(int32)",
    "i16": "tensor(int16)",
    "i8": "tensor(int8)",
    "ui64": "tensor(uint64)",
    "ui32": "tensor(uint32)",
    "ui16": "tensor(uint16)",
    "ui8": "tensor(uint8)",
    "i1": "tensor(bool)",
}


def _options(threads=None, mode="fused", weights="file", target="host", cost_profile=None, shapes=None):
    """The options every native call takes, in full."""
    return {
        "threads": threads,
        "mode": mode,
        "weights": weights,
        "target": target,
        "cost_profile": None if cost_profile is None else os.fspath(cost_profile),
        "shapes": None if shapes is None else {k: [int(d) for d in v] for k, v in shapes.items()},
    }


class NodeArg:
    """A model input or output: ``name``, ``shape`` (as ONNX Runtime gives it: an int per
    static dimension, the model's name for a symbolic one such as ``'N'``, ``None`` for an
    unnamed one) and ``type`` (ONNX Runtime's spelling, such as ``tensor(float)``)."""

    __slots__ = ("name", "shape", "type")

    def __init__(self, name: str, shape: List[Optional[int]], dim_names: List[Optional[str]], element: str) -> None:
        self.name = name
        self.shape: List[Union[int, str, None]] = [n if n is not None else d for d, n in zip(shape, dim_names)]
        self.type = _ONNX_TYPES.get(element, f"tensor({element})")

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def _to_wire(name: str, value: Any):
    array = np.ascontiguousarray(value)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    element = _FROM_NUMPY.get(array.dtype.str)
    if element is None:
        raise InputError(f"input '{name}': numpy dtype {array.dtype} is not one Smelt takes")
    return (name, element, [int(d) for d in array.shape], array.tobytes())


def _from_wire(element: str, shape: Sequence[int], data: bytes) -> np.ndarray:
    dtype = _TO_NUMPY.get(element)
    if dtype is None:
        raise SmeltError(f"an output of element type {element} has no numpy dtype")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


class Session:
    """A loaded model, compiled once per input shape and run on numpy arrays.

    ``model`` is a path (``.onnx`` or ``.mlir``) or the bytes of an ONNX model. ``threads``
    defaults to every core this process may use; ``mode`` is ``fused``, ``unfused`` or
    ``reference``; ``weights`` is ``file``, ``random`` or ``random:SEED``; ``target`` and
    ``cost_profile`` price the fusion decisions; ``shapes`` pins symbolic input dimensions
    (``{"input": [1, 3, 224, 224]}``).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike, bytes],
        threads: Optional[int] = None,
        mode: str = "fused",
        weights: str = "file",
        target: str = "host",
        cost_profile: Optional[Union[str, os.PathLike]] = None,
        shapes: Optional[Mapping[str, Sequence[int]]] = None,
    ) -> None:
        model = model if isinstance(model, bytes) else os.fspath(model)
        options = _options(threads, mode, weights, target, cost_profile, shapes)
        self._native = _native.NativeSession(model, options)
        self._inputs = [NodeArg(*info) for info in self._native.inputs()]
        self._outputs = [NodeArg(*info) for info in self._native.outputs()]

    def get_inputs(self) -> List[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        return list(self._outputs)

    def run(self, output_names: Optional[Sequence[str]], input_feed: Mapping[str, Any]) -> List[np.ndarray]:
        """Runs the model on ``input_feed`` (every input, by name) and returns the outputs
        ``output_names`` names, in that order (every output for ``None``), as numpy arrays.
        The GIL is released while the model runs."""
        known = [o.name for o in self._outputs]
        wanted = known if output_names is None else list(output_names)
        for name in wanted:
            if name not in known:
                raise InputError(f"output '{name}': the model has no such output (its outputs: {', '.join(known)})")
        feed = [_to_wire(name, value) for name, value in input_feed.items()]
        produced = dict(self._native.run(feed))
        return [_from_wire(*produced[name]) for name in wanted]


def report(
    path: Union[str, os.PathLike],
    target: str = "host",
    cost_profile: Optional[Union[str, os.PathLike]] = None,
    weights: str = "file",
) -> Dict[str, Any]:
    """The characterization and fusion report: the keys of ``smelt report --json``."""
    options = _options(weights=weights, target=target, cost_profile=cost_profile)
    return json.loads(_native.report(os.fspath(path), options))


def plan(path: Union[str, os.PathLike], target: str = "h100-sxm", weights: str = "file") -> Dict[str, Any]:
    """The launch plan for ``target``, fused beside unfused: the keys of ``smelt plan --json``."""
    return json.loads(_native.plan(os.fspath(path), target, _options(weights=weights)))


def tune(
    path: Union[str, os.PathLike],
    profile: Union[str, os.PathLike],
    target: str = "host",
    threads: int = 1,
    max_rounds: int = 8,
    weights: str = "file",
) -> Dict[str, Any]:
    """Tunes the model on this machine into the calibration ``profile``: the keys of
    ``smelt tune --json``."""
    options = _options(threads=threads, weights=weights, target=target)
    return json.loads(_native.tune(os.fspath(path), os.fspath(profile), max_rounds, options))
