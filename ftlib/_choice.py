"""Closed sets of options that users may also name by string: ``prepare(model, "head")``."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

_C = TypeVar("_C", bound="Choice")


class Choice(str, Enum):
    """A string enum whose ``parse`` turns a member or its name, in any case, into a member."""

    @classmethod
    def parse(cls: type[_C], value: _C | str) -> _C:
        """Return the member ``value`` names.

        Raises:
            ValueError: ``value`` names no member; the message lists the valid names.
        """
        try:
            return cls(value.lower() if isinstance(value, str) else value)
        except ValueError:
            valid = ", ".join(repr(member.value) for member in cls)
            raise ValueError(f"unknown {cls.__name__} {value!r}; use one of {valid}") from None

    def __str__(self) -> str:
        """The name a user would type: ``print(plan.state)`` shows ``full``, not ``State.FULL``."""
        return self.value
