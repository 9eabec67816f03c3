"""JSON through CPython's C accelerator directly.

`import json` pulls in re and enum and costs ~9 ms here, more than the rest of a
`pyrt state`; the C scanner and encoder in `_json` need only a context object.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _DecodeContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_DecodeContext())  # type: ignore[arg-type]
_WS = " \t\n\r"


class JSONError(ValueError):
    pass


def loads(text: str) -> Any:
    """Parse one JSON document (no NaN or Infinity); raise JSONError on any failure."""
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError, RecursionError):
        raise JSONError(_explain(text)) from None
    finally:
        _DecodeContext.memo.clear()
    if text[end:].strip(_WS):
        raise JSONError(f"invalid JSON: extra data at offset {end}")
    return value


def _explain(text: str) -> str:
    """The error message for a document our fast scan refused.

    The C scanner builds its exception from json.decoder, which the fast path never
    imports (it may even fail with a SystemError then); on this error path only, the
    stdlib parser says what is wrong and where.
    """
    import json

    try:
        json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except ValueError as e:
        return f"invalid JSON: {e}"
    return "invalid JSON"


# (markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys, allow_nan)
_encode = _json.make_encoder(
    None, None, _json.encode_basestring, None, ": ", ", ", False, False, True  # type: ignore[arg-type]
)
_encode_compact = _json.make_encoder(
    None, None, _json.encode_basestring, None, ":", ",", False, False, True  # type: ignore[arg-type]
)


def dumps(value: Any, compact: bool = False) -> str:
    """One-line JSON (non-ASCII kept as is)."""
    return "".join((_encode_compact if compact else _encode)(value, 0))


def dumps_indented(value: Any, indent: int = 2, level: int = 0) -> str:
    """Indented JSON like Go's json.MarshalIndent, for `state` and `features`."""
    pad = " " * (indent * (level + 1))
    end = " " * (indent * level)
    if isinstance(value, dict) and value:
        items = (
            f"{pad}{dumps(str(k))}: {dumps_indented(v, indent, level + 1)}"
            for k, v in value.items()
        )
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, list) and value:
        items = (f"{pad}{dumps_indented(v, indent, level + 1)}" for v in value)
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return dumps(value)
