"""pyrt.record: the small @dataclass replacement behind the config model."""

from __future__ import annotations

import pytest

from pyrt.record import field, record


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    meta: dict[str, int] = field(default_factory=dict)


@record
class Other:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    meta: dict[str, int] = field(default_factory=dict)


def test_keyword_init_and_defaults() -> None:
    p = Point(x=1)
    assert (p.x, p.y, p.tags, p.meta) == (1, 0, [], {})
    q = Point(x=1, y=2, tags=["a"], meta={"k": 1})
    assert (q.x, q.y, q.tags, q.meta) == (1, 2, ["a"], {"k": 1})


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        Point(1)  # type: ignore[misc]


def test_default_factory_gives_fresh_objects() -> None:
    a, b = Point(x=1), Point(x=2)
    a.tags.append("mutated")
    a.meta["k"] = 1
    assert b.tags == [] and b.meta == {}
    assert a.tags is not b.tags and a.meta is not b.meta
    assert Point(x=3).tags == []


def test_passed_value_is_used_as_is() -> None:
    tags = ["t"]
    assert Point(x=1, tags=tags).tags is tags


def test_factory_is_not_left_as_class_attribute() -> None:
    assert "tags" not in Point.__dict__
    assert Point.__dict__["y"] == 0


def test_missing_field() -> None:
    with pytest.raises(TypeError, match="Point: missing field 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing field 'x'"):
        Point(y=1)  # type: ignore[call-arg]


def test_unknown_field() -> None:
    with pytest.raises(TypeError, match=r"unknown fields \['w', 'z'\]"):
        Point(x=1, z=2, w=3)  # type: ignore[call-arg]


def test_eq() -> None:
    assert Point(x=1, tags=["a"]) == Point(x=1, tags=["a"])
    assert Point(x=1) != Point(x=2)
    assert Point(x=1) != Point(x=1, y=1)
    assert Point(x=1) != Point(x=1, meta={"a": 1})
    assert Point(x=1) != Other(x=1)  # same fields, other class
    assert Point(x=1) != (1, 0, [], {})
    assert Point(x=1).__eq__(Other(x=1)) is NotImplemented


def test_unhashable_like_a_dataclass_with_eq() -> None:
    with pytest.raises(TypeError):
        hash(Point(x=1))


def test_repr() -> None:
    assert repr(Point(x=1, tags=["a"])) == "Point(x=1, y=0, tags=['a'], meta={})"
    assert repr(Point(x="s")) == "Point(x='s', y=0, tags=[], meta={})"  # type: ignore[arg-type]


def test_record_fields_in_declaration_order() -> None:
    assert Point.__record_fields__ == ("x", "y", "tags", "meta")  # type: ignore[attr-defined]


def test_methods_are_kept() -> None:
    @record
    class WithMethod:
        a: int

        def double(self) -> int:
            return self.a * 2

    assert WithMethod(a=4).double() == 8


def test_subclass_adds_fields_after_the_base_ones() -> None:
    @record
    class Base:
        a: int

    @record
    class Child(Base):
        b: int = 2

    c = Child(a=1)
    assert (c.a, c.b) == (1, 2)
    assert Child.__record_fields__ == ("a", "b")  # type: ignore[attr-defined]


def test_subclass_inherits_base_defaults() -> None:
    @record
    class Base:
        a: int = 1
        items: list[int] = field(default_factory=list)

    @record
    class Child(Base):
        b: int = 2

    c = Child()
    assert (c.a, c.items, c.b) == (1, [], 2)
