"""Reading untrusted JSON field by field: the metadata of weights, checkpoints and galleries.

A file's metadata is a JSON string anyone can edit, so no value is used before its type and range
are checked; every problem is one `CunetError` line naming the file and the field
(`model.safetensors: info.decode.blend must be a number from 0 to 1, got 'x'`).
"""

from __future__ import annotations

import json
import math
import numbers

from cunet.errors import CunetError

REQUIRED = object()
#: Longest text field accepted (paths in a gallery, names): longer is a crafted file.
MAX_TEXT = 4096


def shorten(value, limit: int = 60) -> str:
    """A value as a message shows it: its repr, cut short (a file or a request may hold anything, at any length)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_json_object(text, origin: str) -> dict:
    """A JSON object from a file's metadata string, or a CunetError naming `origin`."""
    if not isinstance(text, str):
        raise CunetError(f"{origin} is not text")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CunetError(f"{origin} is not valid JSON ({error.msg} at character {error.pos})") from None
    except RecursionError:
        raise CunetError(f"{origin} is nested too deeply") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise CunetError(f"{origin} is not usable JSON ({error})") from None
    if not isinstance(value, dict):
        raise CunetError(f"{origin} must be a JSON object, got {shorten(value)}")
    return value


class Fields:
    """One JSON object of a file, read key by key; `origin` names the file, `prefix` the object in it."""

    def __init__(self, values, origin: str, prefix: str = "") -> None:
        if not isinstance(values, dict):
            raise CunetError(f"{origin}: {prefix.rstrip('.') or 'metadata'} must be a JSON object, got {shorten(values)}")
        self.values, self.origin, self.prefix = values, origin, prefix

    def fail(self, key: str, wanted: str, value) -> CunetError:
        return CunetError(f"{self.origin}: {self.prefix}{key} must be {wanted}, got {shorten(value)}")

    def _absent(self, key: str, default) -> bool:
        """Whether `key` is missing (then its default is used), or a CunetError if it is required."""
        if key in self.values:
            return False
        if default is REQUIRED:
            raise CunetError(f"{self.origin}: {self.prefix}{key} is missing")
        return True

    def has(self, key: str) -> bool:
        return key in self.values

    def integer(self, key: str, low: int, high: int, default=REQUIRED) -> int:
        if self._absent(key, default):
            return default
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
            raise self.fail(key, f"a whole number from {low:,} to {high:,}", value)
        return int(value)

    def number(self, key: str, low: float = -math.inf, high: float = math.inf, default=REQUIRED) -> float:
        if self._absent(key, default):
            return default
        value = self.values[key]
        if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                or not low <= value <= high):
            span = "a finite number" if math.isinf(low) and math.isinf(high) else f"a number from {low:g} to {high:g}"
            raise self.fail(key, span, value)
        return float(value)

    def flag(self, key: str, default=REQUIRED) -> bool:
        if self._absent(key, default):
            return default
        value = self.values[key]
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def text(self, key: str, choices: tuple[str, ...] | None = None, default=REQUIRED, optional: bool = False):
        if self._absent(key, default):
            return default
        value = self.values[key]
        if value is None and optional:
            return None
        if choices is not None and value not in choices:
            raise self.fail(key, "one of " + ", ".join(repr(c) for c in choices), value)
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise self.fail(key, f"a text of at most {MAX_TEXT} characters", value)
        return value

    def texts(self, key: str, count: int) -> list[str]:
        """A list of exactly `count` texts (a gallery's paths: one per photo)."""
        self._absent(key, REQUIRED)
        value = self.values[key]
        if not isinstance(value, list) or len(value) != count:
            raise self.fail(key, f"a list of {count:,} texts (one per photo)",
                            f"{len(value):,} items" if isinstance(value, list) else value)
        for index, item in enumerate(value):
            if not isinstance(item, str) or len(item) > MAX_TEXT:
                raise self.fail(f"{key}[{index}]", f"a text of at most {MAX_TEXT} characters", item)
        return list(value)

    def section(self, key: str, required: bool = False) -> Fields:
        """The object at `key` (an empty one when it is absent and not required)."""
        value = {} if self._absent(key, REQUIRED if required else {}) else self.values[key]
        return Fields(value, self.origin, f"{self.prefix}{key}.")
