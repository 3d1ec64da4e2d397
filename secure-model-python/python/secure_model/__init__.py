"""Load signed, encrypted secure-model packages straight into numpy, torch and model servers.

Every byte handed to Python has passed the package's signed digests (of its file, or of each
of its shards); the manifest was signed by a trusted signer and the data key matched the signed
commitment. Nothing is written to any filesystem. A failure raises a :class:`SecureModelError`
subclass carrying the CLI's failure class and exit code, and returns no tensor.

Settings are the init container's (``SECURE_MODEL_TRUSTED_KEYS``, ``SECURE_MODEL_KEYS``, KBS and
CDH variables, KServe's storage variables: ``secure-model settings`` lists them); the keyword
arguments ``trusted_keys``, ``trust_policy``, ``keys`` and ``manifest_digest`` override them.

The API follows ``safetensors``: ``load_file``, ``safe_open``, plus ``stream_tensors`` (the
iterator shape vLLM's loaders consume) and ``read_file`` for small files.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import (
    ConfigError,
    DestinationError,
    IntegrityError,
    InternalError,
    SecureModelError,
    StorageError,
    UnlockError,
    UsageError,
)
from ._frameworks import convert, framework as _framework, view

__all__ = [
    "open_package",
    "Package",
    "load_file",
    "safe_open",
    "stream_tensors",
    "read_file",
    "SecureModelError",
    "UsageError",
    "ConfigError",
    "IntegrityError",
    "UnlockError",
    "StorageError",
    "DestinationError",
    "InternalError",
]

PathLike = Union[str, "os.PathLike[str]"]


def _paths(v: Union[None, PathLike, Sequence[PathLike]]) -> Optional[List[str]]:
    if v is None:
        return None
    if isinstance(v, (str, os.PathLike)):
        return [os.fspath(v)]
    return [os.fspath(p) for p in v]


def _keys(v: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(k) for k in v]


class Package:
    """An opened package: its manifest verified against the trusted signers and its data key
    released. Open it once (``open_package``) to read several files with one key release."""

    def __init__(self, native: Any):
        self._native = native

    @property
    def info(self) -> Dict[str, str]:
        """Model name, id, signer, and the recipient whose key unlocked the package."""
        return dict(self._native.info())

    def files(self) -> Dict[str, int]:
        """Every file of the package and its plaintext size, in manifest order."""
        return dict(self._native.files())

    def safetensors_files(self) -> List[str]:
        """The package's ``*.safetensors`` files, sorted."""
        return sorted(p for p in self.files() if p.endswith(".safetensors"))

    def _targets(self, filename: Union[None, str, Sequence[str]]) -> List[str]:
        if filename is None:
            names = self.safetensors_files()
            if not names:
                raise UsageError("the package has no *.safetensors file")
            return names
        names = [filename] if isinstance(filename, str) else list(filename)
        files = self.files()
        for n in names:
            if n not in files:
                raise UsageError(f"the package has no file {n!r}")
        return names

    def read_file(self, path: str) -> bytes:
        """The verified bytes of the file at ``path`` (config.json, tokenizer files)."""
        return self._native.read_file(path)

    def load_file(
        self,
        filename: Union[None, str, Sequence[str]] = None,
        *,
        framework: str = "numpy",
        device: str = "cpu",
    ) -> Dict[str, Any]:
        """Every tensor of ``filename`` (``None``: every ``*.safetensors`` file), by name.
        All files are verified before the first tensor is made; each file's tensors are views
        of the one buffer it was decrypted into."""
        fw = _framework(framework)
        out: Dict[str, Any] = {}
        for path, data, tensors, _meta in self._native.load(self._targets(filename)):
            for name, dtype, shape, start, end in tensors:
                if name in out:
                    raise UsageError(f"tensor {name!r} appears in more than one file ({path})")
                out[name] = view(fw, dtype, shape, data, start, end, device)
        return out

    def stream_tensors(
        self,
        filename: Union[None, str, Sequence[str]] = None,
        *,
        framework: str = "pt",
        device: str = "cpu",
    ) -> Iterator[Tuple[str, Any]]:
        """``(name, tensor)`` pairs, file by file: a file's tensors are yielded once the whole
        file verified, and only one file is read at a time. A file's tensors are views of the
        one buffer it was decrypted into, freed with the last of them."""
        fw = _framework(framework)
        for _path, name, dtype, shape, data, start, end in self._native.stream(self._targets(filename)):
            yield name, view(fw, dtype, shape, data, start, end, device)

    def safe_open(self, filename: str, framework: str = "numpy", device: str = "cpu") -> "safe_open":
        """``safe_open`` on one file of this package."""
        return safe_open(self, filename, framework=framework, device=device)


def open_package(
    source: Union[PathLike, Package],
    *,
    trusted_keys: Union[None, PathLike, Sequence[PathLike]] = None,
    trust_policy: Optional[PathLike] = None,
    keys: Union[None, str, Sequence[str]] = None,
    manifest_digest: Optional[str] = None,
) -> Package:
    """Opens the package at ``source`` (``s3://``, ``gs://``, ``az://``, ``https://``, KServe's
    ``secure+`` forms, a directory): fetches and verifies its manifest, releases its data key.

    Raises the :class:`SecureModelError` subclass of the failure."""
    if isinstance(source, Package):
        return source
    native = _native.open_package(
        os.fspath(source),
        trusted_keys=_paths(trusted_keys),
        trust_policy=os.fspath(trust_policy) if trust_policy is not None else None,
        keys=_keys(keys),
        manifest_digest=manifest_digest,
    )
    return Package(native)


def load_file(
    source: Union[PathLike, Package],
    filename: Union[None, str, Sequence[str]] = None,
    *,
    framework: str = "numpy",
    device: str = "cpu",
    **settings: Any,
) -> Dict[str, Any]:
    """Like ``safetensors.<framework>.load_file``: every tensor of ``filename`` of the package
    at ``source`` (``None``: every ``*.safetensors`` file of it), by name. ``framework`` is
    ``"numpy"`` or ``"pt"``; ``settings`` are ``open_package``'s keyword arguments."""
    return open_package(source, **settings).load_file(filename, framework=framework, device=device)


def stream_tensors(
    source: Union[PathLike, Package],
    filename: Union[None, str, Sequence[str]] = None,
    *,
    framework: str = "pt",
    device: str = "cpu",
    **settings: Any,
) -> Iterator[Tuple[str, Any]]:
    """``(name, tensor)`` pairs of the package's safetensors files, each file's once it
    verified: the iterator vLLM's ``load_weights`` consumes."""
    return open_package(source, **settings).stream_tensors(filename, framework=framework, device=device)


def read_file(source: Union[PathLike, Package], path: str, **settings: Any) -> bytes:
    """The verified bytes of the file at ``path`` of the package at ``source``."""
    return open_package(source, **settings).read_file(path)


def _dims(index: Any, shape: Sequence[int]) -> Tuple[List[Tuple[int, int, int]], List[int]]:
    """``index`` (as ``safetensors``' ``get_slice(...)[index]`` takes it: integers, slices with
    a positive step, one ``...``) over ``shape``: one ``(start, stop, step)`` per dimension,
    and the dimensions an integer removes. Bounds past a dimension are clipped as Python's
    slices are; an integer outside its dimension is a ``UsageError``."""
    import operator

    items = list(index) if isinstance(index, tuple) else [index]
    ellipses = sum(1 for i in items if i is Ellipsis)
    if ellipses > 1:
        raise UsageError("only one ellipsis (...) is allowed in a slice index")
    explicit = len(items) - ellipses
    if explicit > len(shape):
        raise UsageError(f"{explicit} indices for a tensor of {len(shape)} dimensions")
    if ellipses:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (len(shape) - explicit)
    items += [slice(None)] * (len(shape) - len(items))
    dims: List[Tuple[int, int, int]] = []
    dropped: List[int] = []
    for d, (item, size) in enumerate(zip(items, shape)):
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            if step < 1:
                raise UsageError(f"slice step must be a positive integer, got {step} (dimension {d})")
            dims.append((start, max(start, stop), step))
            continue
        if isinstance(item, bool):
            raise UsageError(f"a boolean is not a slice index (dimension {d})")
        try:
            i = operator.index(item)
        except TypeError:
            raise UsageError(
                f"unsupported slice index {item!r} at position {d}: expected a slice, an integer or ..."
            ) from None
        if not -size <= i < size:
            raise UsageError(f"index {i} out of range for dimension {d} of size {size}")
        i %= size
        dims.append((i, i + 1, 1))
        dropped.append(d)
    return dims, dropped


class _Slice:
    """``safe_open(...).get_slice(name)``, like ``safetensors``' ``PySafeSlice``: shape and
    dtype without copying; ``[...]`` copies only the selected elements out of the verified
    file into a new tensor."""

    def __init__(self, owner: "safe_open", name: str):
        self._owner = owner
        self._name = name
        self._dtype, self._shape = owner._file.info(name)

    def get_shape(self) -> List[int]:
        return list(self._shape)

    def get_dtype(self) -> str:
        return self._dtype

    def __getitem__(self, index: Any) -> Any:
        dims, dropped = _dims(index, self._shape)
        dtype, counts, data = self._owner._file.slice(self._name, dims)
        shape = [c for d, c in enumerate(counts) if d not in dropped]
        return convert(self._owner._fw, dtype, shape, data, self._owner._device)


class safe_open:
    """Like ``safetensors.safe_open``: one safetensors file of a package, verified whole when
    opened and held in memory until the ``with`` block ends (then zeroed)."""

    def __init__(
        self,
        source: Union[PathLike, Package],
        filename: str,
        framework: str = "numpy",
        device: str = "cpu",
        **settings: Any,
    ):
        self._fw = _framework(framework)
        self._device = device
        pkg = open_package(source, **settings)
        pkg._targets(filename)
        self._file = pkg._native.open_file(filename)

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Zeroes and frees the file's bytes."""
        self._file.close()

    def keys(self) -> List[str]:
        """Tensor names, sorted."""
        return self._file.keys()

    def metadata(self) -> Optional[Dict[str, str]]:
        """The header's ``__metadata__``."""
        m = self._file.metadata()
        return dict(m) if m is not None else None

    def get_tensor(self, name: str) -> Any:
        """Tensor ``name`` (a copy)."""
        dtype, shape, data = self._file.tensor(name)
        return convert(self._fw, dtype, shape, data, self._device)

    def get_slice(self, name: str) -> _Slice:
        """A slice object of tensor ``name`` (``get_shape``, ``get_dtype``, ``[...]``)."""
        return _Slice(self, name)
