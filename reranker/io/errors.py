"""The error types every stage raises, so that the command line can print any of them as a single line."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping


class InputError(ValueError):
    """Bad input: names the file, the line (1-based; None for the whole file) and the problem."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.message = message
        super().__init__(f"{location(path, line)}: {message}")

    def __reduce__(self):  # its arguments are not `args`: pickled as constructed (a worker process raises it)
        return type(self), (self.path, self.line, self.message)


def location(path: str | os.PathLike | None, line: int | None) -> str:
    """Where an input error is, as every error message writes it: `file:line`, `file` or `<input>`.

    Example:
        >>> location("train.jsonl", 3)
        'train.jsonl:3'
    """
    where = (None if path is None else os.fspath(path)) or "<input>"
    return where if line is None else f"{where}:{line}"


class UsageError(ValueError):
    """A nonsensical setting or combination of settings."""


class ParameterError(UsageError):
    """A bad value of a named parameter. The message is a template whose `{0}`, `{1}`, ... are the parameters'
    names: the library says `q_max_len must be >= 1, got 0`, the command line `--q_max_len must be >= 1, got 0`.

    Example:
        >>> str(ParameterError("{0} must be >= 1, got 0", "q_max_len"))
        'q_max_len must be >= 1, got 0'
    """

    def __init__(self, template: str, *parameters: str) -> None:
        self.template = template
        self.parameters = parameters
        super().__init__(template.format(*parameters))

    def __reduce__(self):  # as InputError's
        return type(self), (self.template, *self.parameters)

    def as_flags(self, flag_names: Mapping[str, str] | None = None) -> str:
        """The message with each parameter written as its command-line flag (`flag_names` maps those whose flag
        has another name, e.g. `batch_size` -> `per_device_eval_batch_size`)."""
        flag_names = flag_names or {}
        return self.template.format(*(f"--{flag_names.get(name, name)}" for name in self.parameters))


def literal(text: object) -> str:
    """`text` made safe to put into a ParameterError template (its braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


def check_at_least(name: str, value: int | float | None, minimum: int | float) -> None:
    """ParameterError unless `value` (when given) is at least `minimum`."""
    if value is not None and value < minimum:
        raise ParameterError(f"{{0}} must be >= {minimum}, got {value}", name)


def parse_numbers(name: str, text: str) -> tuple[float, ...]:
    """A comma-separated list of finite numbers given for parameter `name` (weights, say); ParameterError if one
    is not a number, or is nan or infinite (`float` reads them, and `nan < 0` is false: no range check sees nan).

    Example:
        >>> parse_numbers("loss_weights", "1,0.5")
        (1.0, 0.5)
    """
    try:
        values = tuple(float(value) for value in text.split(","))
    except ValueError:
        raise ParameterError(f"{{0}} must be numbers, got {literal(repr(text))}", name) from None
    if not all(math.isfinite(value) for value in values):
        raise ParameterError(f"{{0}} must be finite numbers, got {literal(repr(text))}", name)
    return values


def check_fraction(name: str, value: float) -> None:
    """ParameterError unless 0 <= `value` < 1 (a probability or a ratio of a whole)."""
    if not 0 <= value < 1:
        raise ParameterError(f"{{0}} must be in [0, 1), got {value}", name)


@contextlib.contextmanager
def parameters_renamed(names: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a ParameterError from the block with its parameters renamed (a library name -> an argument's)."""
    try:
        yield
    except ParameterError as err:
        raise ParameterError(err.template, *(names.get(name, name) for name in err.parameters)) from None
