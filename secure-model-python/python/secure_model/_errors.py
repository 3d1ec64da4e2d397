"""The exceptions of ``secure_model``: one subclass of :class:`SecureModelError` per failure
class, each carrying the class name (``error_class``) and the exit code (``exit_code``) the
``secure-model`` CLI and the init container use for the same failure."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "SecureModelError",
    "UsageError",
    "ConfigError",
    "IntegrityError",
    "UnlockError",
    "StorageError",
    "DestinationError",
    "InternalError",
]


class SecureModelError(Exception):
    """A package could not be loaded. ``error_class`` and ``exit_code`` are the CLI's;
    ``hint`` says what to try, when the class suggests something. Messages never contain a
    key."""

    error_class = "internal"
    exit_code = 1

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(SecureModelError, ValueError):
    """A bad argument (unknown framework, a tensor or file that is not there, BF16 into numpy)."""

    error_class = "usage"
    exit_code = 2


class ConfigError(SecureModelError):
    """A setting or input of the operator is wrong (no key, no trusted signer, malformed value,
    a file that is not safetensors)."""

    error_class = "config"
    exit_code = 3


class IntegrityError(SecureModelError):
    """The package failed a signature, integrity or structure check: untrusted signer,
    tampered or truncated data (possible tampering)."""

    error_class = "integrity"
    exit_code = 4


class UnlockError(SecureModelError):
    """No configured key could unlock the package (wrong key, not a recipient, key release
    refused)."""

    error_class = "key"
    exit_code = 5


class StorageError(SecureModelError):
    """Storage could not be read (missing package, credentials, network)."""

    error_class = "storage"
    exit_code = 6


class DestinationError(SecureModelError):
    """The model does not fit in memory (the allocator refused)."""

    error_class = "destination"
    exit_code = 7


class InternalError(SecureModelError):
    """Anything else."""

    error_class = "internal"
    exit_code = 1
