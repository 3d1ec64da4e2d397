"""Raw verified tensors (safetensors dtype name, shape, and a buffer or a byte range of one:
a ``secure_model._native.Buffer``, which exports its bytes through the buffer protocol) into
numpy arrays or torch tensors, sharing the buffer's memory (no further copy)."""

from __future__ import annotations

import sys
from typing import Any, Sequence

from ._errors import UsageError

# Any object with the buffer protocol: a ``secure_model._native.Buffer`` (verified bytes,
# wiped when the last view of them is freed) or, for a misaligned tensor, a ``bytearray`` copy.
Buffer = Any

_NUMPY = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "U16": "<u2",
    "I16": "<i2",
    "F16": "<f2",
    "U32": "<u4",
    "I32": "<i4",
    "F32": "<f4",
    "U64": "<u8",
    "I64": "<i8",
    "F64": "<f8",
    "C64": "<c8",
}

_TORCH = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "F16": "float16",
    "BF16": "bfloat16",
    "U32": "uint32",
    "I32": "int32",
    "F32": "float32",
    "U64": "uint64",
    "I64": "int64",
    "F64": "float64",
    "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}

FRAMEWORKS = {"numpy": "numpy", "np": "numpy", "pt": "pt", "torch": "pt"}


def framework(name: str) -> str:
    """The canonical framework name (``numpy`` or ``pt``) of ``name``."""
    try:
        return FRAMEWORKS[name]
    except (KeyError, TypeError):
        raise UsageError(
            f"framework must be one of {sorted(FRAMEWORKS)}, not {name!r}"
        ) from None


def _check_byteorder() -> None:
    if sys.byteorder != "little":
        raise UsageError("safetensors data is little-endian; this machine is not")


def to_numpy(dtype: str, shape: Sequence[int], data: Buffer) -> Any:
    """A numpy array over ``data``."""
    import numpy as np

    _check_byteorder()
    try:
        dt = np.dtype(_NUMPY[dtype])
    except KeyError:
        raise UsageError(
            f"dtype {dtype} has no numpy equivalent; load with framework='pt'"
        ) from None
    return np.frombuffer(data, dtype=dt).reshape(tuple(shape))


def to_torch(dtype: str, shape: Sequence[int], data: Buffer, device: str = "cpu") -> Any:
    """A torch tensor over ``data`` (moved to ``device`` unless it is ``cpu``)."""
    import torch

    _check_byteorder()
    name = _TORCH.get(dtype)
    dt = getattr(torch, name, None) if name else None
    if dt is None:
        raise UsageError(f"dtype {dtype} has no torch equivalent in this torch version")
    if len(data) == 0:
        t = torch.empty(tuple(shape), dtype=dt)
    else:
        t = torch.frombuffer(data, dtype=dt).reshape(tuple(shape))
    if device != "cpu":
        t = t.to(device)
    return t


def _itemsize(fw: str, dtype: str) -> int:
    if fw == "numpy":
        import numpy as np

        name = _NUMPY.get(dtype)
        if name is None:
            raise UsageError(f"dtype {dtype} has no numpy equivalent; load with framework='pt'")
        return np.dtype(name).itemsize
    import torch

    name = _TORCH.get(dtype)
    dt = getattr(torch, name, None) if name else None
    if dt is None:
        raise UsageError(f"dtype {dtype} has no torch equivalent in this torch version")
    return dt.itemsize


def view(fw: str, dtype: str, shape: Sequence[int], data: Buffer, start: int, end: int, device: str = "cpu") -> Any:
    """A tensor of framework ``fw`` over bytes ``start..end`` of ``data`` (a verified file):
    a view sharing its memory when ``start`` is aligned to the element size, else a copy of
    those bytes (as any misaligned tensor of a safetensors file is)."""
    n = end - start
    if n == 0 or start % _itemsize(fw, dtype) != 0:
        return convert(fw, dtype, shape, bytearray(memoryview(data)[start:end]), device)
    _check_byteorder()
    if fw == "numpy":
        import numpy as np

        dt = np.dtype(_NUMPY[dtype])
        return np.frombuffer(data, dtype=dt, count=n // dt.itemsize, offset=start).reshape(tuple(shape))
    import torch

    dt = getattr(torch, _TORCH[dtype])
    t = torch.frombuffer(data, dtype=dt, count=n // dt.itemsize, offset=start).reshape(tuple(shape))
    if device != "cpu":
        t = t.to(device)
    return t


def convert(fw: str, dtype: str, shape: Sequence[int], data: Buffer, device: str = "cpu") -> Any:
    """A tensor of framework ``fw`` (canonical name)."""
    if fw == "numpy":
        return to_numpy(dtype, shape, data)
    return to_torch(dtype, shape, data, device)
