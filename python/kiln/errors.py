"""Kiln's exceptions.

Every error Kiln's C++ library reports arrives as one of these classes, chosen by its error code,
with Kiln's message (which names the file, node or input at fault and what was expected). Each
class also derives from the built-in exception a Python caller would catch for it: bad arguments,
files and names are ``ValueError`` s; unsupported features ``NotImplementedError``; the rest
``RuntimeError`` s.
"""

__all__ = [
    "KilnError",
    "InvalidArgumentError",
    "NotFoundError",
    "DataLossError",
    "UnimplementedError",
    "FailedPreconditionError",
    "ResourceExhaustedError",
    "UnavailableError",
    "InternalError",
    "CancelledError",
]


class KilnError(Exception):
    """Base class of Kiln's errors."""


class InvalidArgumentError(KilnError, ValueError):
    """The caller passed something wrong: an input name, shape, dtype or option."""


class NotFoundError(KilnError, ValueError):
    """A file, tag, signature, node or variable does not exist."""


class DataLossError(KilnError, ValueError):
    """A file is truncated, corrupt or fails its checksum."""


class UnimplementedError(KilnError, NotImplementedError):
    """Valid input that Kiln does not support (yet)."""


class FailedPreconditionError(KilnError, RuntimeError):
    """A method called in the wrong order (build() before convert(), ...)."""


class ResourceExhaustedError(KilnError, RuntimeError):
    """Out of memory (host or device), or a configured limit reached."""


class UnavailableError(KilnError, RuntimeError):
    """A device or driver that cannot be used on this machine or build."""


class InternalError(KilnError, RuntimeError):
    """A bug in Kiln: please report it with the message."""


class CancelledError(KilnError, RuntimeError):
    """The run was cancelled."""
