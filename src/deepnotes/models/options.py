"""Checks of the size options the model builders take (width multipliers, layer widths, hidden
sizes): a bad value is a ValueError naming the option, which create_model turns into one line for
the user. Nothing is clamped: width=0 or -1 used to become the smallest width silently.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence


def is_whole(value: Any) -> bool:
    """An integer, or a float without a fraction (JSON may give 16.0); never a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral) or isinstance(value, float) and value.is_integer()


def check_multiplier(name: str, value: Any) -> float:
    """A width multiplier: a finite number > 0, as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} multiplies every width, so it must be a number > 0 (e.g. 0.5), got {value!r}")
    return float(value)


def check_size(name: str, value: Any, minimum: int = 1) -> int:
    """A size (channels, features, pixels): a whole number >= minimum, as an int."""
    if not (is_whole(value) and value >= minimum):
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_sizes(name: str, values: Iterable[Any], minimum: int = 1) -> tuple[int, ...]:
    """A list of sizes (each a whole number >= minimum), as a tuple of ints; may be empty."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a list of whole numbers >= {minimum}, e.g. [64,128], got {values!r}")
    values = list(values)
    if not all(is_whole(v) and v >= minimum for v in values):
        raise ValueError(f"{name} must be a list of whole numbers >= {minimum}, e.g. [64,128], got {values!r}")
    return tuple(int(v) for v in values)


def check_fraction(name: str, value: Any) -> float:
    """A probability such as a dropout rate: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} is a probability in [0, 1), got {value!r}")
    return float(value)


def pair(x: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from one int (a square) or a pair of ints (image, patch and window sizes)."""
    if isinstance(x, int):
        return (x, x)
    x = tuple(int(v) for v in x)
    if len(x) != 2:
        raise ValueError(f"expected one int or (height, width), got {x}")
    return x
