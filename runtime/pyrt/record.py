"""`@record`: the part of `@dataclass` that the config model uses, without its import cost.

`import dataclasses` pulls in inspect, re and enum: ~16 ms on this machine, a third of
a whole `pyrt create`. A record class declares annotated fields with optional defaults
(immutable values, or `field(default_factory=...)`), and gets keyword
`__init__`, `__repr__` and `__eq__`. Type checkers see it as a dataclass
(dataclass_transform).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_kw):
        return lambda f: f


class Factory:
    """Default made fresh for each instance (like dataclasses.field(default_factory=...))."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A default made fresh for each instance, as in dataclasses."""
    return Factory(default_factory)  # type: ignore[return-value]


_MISSING = object()


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    names: list[str] = []
    for klass in reversed(cls.__mro__[:-1]):
        for name in klass.__dict__.get("__annotations__", {}):  # noqa: RUF063
            if name not in names:
                names.append(name)
    inherited: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[1:]):
        inherited.update(klass.__dict__.get("__record_defaults__", {}))
    defaults = {name: cls.__dict__.get(name, inherited.get(name, _MISSING)) for name in names}

    def __init__(self: Any, **kwargs: Any) -> None:
        for name in names:
            if name in kwargs:
                value = kwargs.pop(name)
            else:
                value = defaults[name]
                if value is _MISSING:
                    raise TypeError(f"{cls.__name__}: missing field {name!r}")
                if isinstance(value, Factory):
                    value = value.make()
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}: unknown fields {sorted(kwargs)}")

    def __repr__(self: Any) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__name__}({fields})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    for name, value in defaults.items():
        if isinstance(value, Factory) and name in cls.__dict__:
            delattr(cls, name)
    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.__repr__ = __repr__  # type: ignore[method-assign]
    cls.__eq__ = __eq__  # type: ignore[method-assign]
    cls.__hash__ = None  # type: ignore[assignment]
    cls.__record_fields__ = tuple(names)  # type: ignore[attr-defined]
    cls.__record_defaults__ = {n: v for n, v in defaults.items()  # type: ignore[attr-defined]
                               if v is not _MISSING}
    return cls
