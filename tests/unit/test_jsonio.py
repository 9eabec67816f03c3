"""pyrt.jsonio: JSON through _json directly, compared with the stdlib json module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pyrt
from pyrt import jsonio

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=20,
)
ascii_text = st.text(st.characters(min_codepoint=0, max_codepoint=126))
ascii_values = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | ascii_text,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ascii_text, kids, max_size=4),
    max_leaves=20,
)
containers = st.lists(json_values, max_size=4) | st.dictionaries(st.text(), json_values,
                                                                 max_size=4)

NESTED = {
    "ociVersion": "1.3.0", "id": "c1", "pid": 0, "ok": True, "no": False, "none": None,
    "float": 0.1, "neg": -3.5e-12, "big": 2**64 + 1, "unicode": "ümlaut ☃ \U0001f600 ✓",
    "escapes": "quote\" back\\ nl\n tab\t nul\x00 bell\x07",
    "empty_obj": {}, "empty_list": [], "nested": {"a": [1, [2, [3, {}]], {"b": [[]]}]},
}


def test_roundtrip_example() -> None:
    for compact in (False, True):
        text = jsonio.dumps(NESTED, compact=compact)
        assert jsonio.loads(text) == NESTED
        assert json.loads(text) == NESTED


def test_dumps_keeps_non_ascii() -> None:
    assert jsonio.dumps("ü☃") == '"ü☃"'
    assert jsonio.dumps({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert jsonio.dumps({"a": [1, 2]}, compact=True) == '{"a":[1,2]}'


def test_types_survive() -> None:
    doc = jsonio.loads('{"i": 1, "f": 1.0, "b": true, "n": null, "s": "1", "e": 1e2}')
    assert type(doc["i"]) is int and type(doc["f"]) is float
    assert doc["b"] is True and doc["n"] is None and doc["s"] == "1"
    assert doc["e"] == 100.0 and type(doc["e"]) is float


def test_loads_surrounding_whitespace() -> None:
    assert jsonio.loads(" \t\r\n[1] \n") == [1]


@given(json_values)
def test_roundtrip_property(value: Any) -> None:
    assert jsonio.loads(jsonio.dumps(value)) == value
    assert jsonio.loads(jsonio.dumps(value, compact=True)) == value
    assert jsonio.loads(jsonio.dumps_indented(value)) == value


@given(json_values)
def test_dumps_matches_stdlib(value: Any) -> None:
    assert jsonio.dumps(value) == json.dumps(value, ensure_ascii=False)
    assert jsonio.dumps(value, compact=True) == json.dumps(
        value, ensure_ascii=False, separators=(",", ":"))


@given(json_values)
def test_loads_reads_stdlib_output(value: Any) -> None:
    assert jsonio.loads(json.dumps(value)) == value  # \uXXXX escapes included
    assert jsonio.loads(json.dumps(value, indent=4)) == value


@pytest.mark.parametrize("value", [
    {}, [], {"a": {}}, {"a": []}, [[]], [{}], [[], {}], {"a": {"b": {"c": []}}},
    [1, [2, [3]]], {"k": None, "t": True, "f": 1.5}, "s", 0, None, NESTED,
])
def test_dumps_indented_examples(value: Any) -> None:
    assert jsonio.dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


@given(ascii_values)
def test_dumps_indented_equals_stdlib_indent_2(value: Any) -> None:
    assert jsonio.dumps_indented(value) == json.dumps(value, indent=2)


@given(containers)
def test_dumps_indented_equals_stdlib_with_unicode(value: Any) -> None:
    # pyrt keeps non-ASCII as is (as Go does), so the stdlib needs ensure_ascii=False
    assert jsonio.dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_dumps_indented_other_indent() -> None:
    value = {"a": [1, {"b": []}]}
    assert jsonio.dumps_indented(value, indent=4) == json.dumps(value, indent=4)


@pytest.mark.parametrize("text", [
    "", " ", "\n\t", "{", "}", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":1", "{'a': 1}",
    "{1: 2}", "\"abc", "\"\\x\"", "\"tab\there\"", "nul", "tru", "01", "1.", ".5", "+1",
    "[1] [2]", "{} x", "1 2", "null null", "\"a\"b", "[1]]", "\ufeff{}", "undefined",
])
def test_invalid_documents(text: str) -> None:
    with pytest.raises(jsonio.JSONError) as info:
        jsonio.loads(text)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("invalid JSON")


def test_error_names_offset_of_trailing_garbage() -> None:
    with pytest.raises(jsonio.JSONError, match="extra data at offset 5"):
        jsonio.loads(' "ab"x')
    with pytest.raises(jsonio.JSONError, match=r"char 0"):
        jsonio.loads("")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_nan_and_infinity_do_not_crash(text: str) -> None:
    try:
        jsonio.loads(text)
    except jsonio.JSONError:
        pass


_TEXT_CHARS = st.sampled_from([*'{}[]",:0123456789.eE+- \ntrufalsn\\x', "\x01", "é"])


@settings(max_examples=300)
@given(st.data())
def test_loads_agrees_with_stdlib_on_mangled_documents(data: st.DataObject) -> None:
    text = json.dumps(data.draw(json_values))
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:i] + data.draw(st.text(_TEXT_CHARS, min_size=1, max_size=3)) + text[i:]
        else:
            text = text[:i] + text[i + 1:]
    assume("NaN" not in text and "Infinity" not in text)  # see test_nan_and_infinity_*
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(jsonio.JSONError):
            jsonio.loads(text)
    else:
        assert jsonio.loads(text) == expected


_SITE = os.path.dirname(os.path.dirname(os.path.abspath(pyrt.__file__)))
def _python() -> str:
    """This interpreter, for a fresh `-I -S` run (as the pyrt launcher runs)."""
    if not os.access(sys.executable, os.X_OK):  # e.g. a venv of root's, run as nobody
        pytest.skip(f"{sys.executable} is not executable by this user")
    return sys.executable


_ISOLATED = f"""
import sys
sys.path.append({_SITE!r})
from pyrt import jsonio
assert "json" not in sys.modules
for text in sys.argv[1:]:
    try:
        jsonio.loads(text)
    except jsonio.JSONError:
        pass
print("ok")
"""


def test_isolated_interpreter_scanner_errors_that_work() -> None:
    """Errors the scanner reports by StopIteration work without `json` imported."""
    out = subprocess.run([_python(), "-I", "-S", "-c", _ISOLATED, "", "x", "[", "[1,]",
                          "[1] x"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "ok\n", out.stderr


@pytest.mark.parametrize("text", ['{"a" 1}', "[1, 2", '"abc', '"\x01"', "[1 2]"])
def test_isolated_interpreter_syntax_errors(text: str) -> None:
    out = subprocess.run([_python(), "-I", "-S", "-c", _ISOLATED, text],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "ok\n", out.stderr
