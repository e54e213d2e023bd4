"""The subset of RFC 8941 Structured Field Values that RFC 9421 signatures need.

Signature-Input, Signature and Content-Digest are all dictionaries; Signature-Input members are
inner lists of strings with parameters. Parsing is strict (a malformed field is rejected, never
guessed at), and `serialize_inner_list` re-creates the canonical `@signature-params` value from
the parsed form, as RFC 9421 §2.3 requires, rather than trusting the sender's spelling.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence

from fedcop.security.httpsig_common import SignatureError


class Token(str):
    """An sf-token (unquoted), distinct from an sf-string when serialising."""

    __slots__ = ()


BareItem = int | float | str | bytes | bool
Params = dict[str, BareItem]
Item = tuple[BareItem, Params]
Member = tuple[BareItem | list[Item], Params]

# RFC 8941 §3 productions, compiled once and matched in place (`pattern.match(text, pos)`):
# a character-by-character parser was the slowest step of verification.
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+.^_`|~:/0-9A-Za-z-]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,3})?")
_STRING = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"')
_ESCAPE = re.compile(r'\\(["\\])')
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_BOOLEAN = re.compile(r"\?[01]")
_SP = re.compile(r" *")
_OWS = re.compile(r"[ \t]*")


def parse_dictionary(text: str, field: str) -> dict[str, Member]:
    """Parse an sf-dictionary; SignatureError naming `field` if it is malformed."""
    try:
        return _Parser(text).dictionary()
    except _MalformedError as exc:
        raise SignatureError(f"malformed {field} header: {exc}") from None


def serialize_inner_list(items: Sequence[str], params: Mapping[str, BareItem]) -> str:
    inner = " ".join(_serialize_bare(item) for item in items)
    return f"({inner}){serialize_params(params)}"


def serialize_params(params: Mapping[str, BareItem]) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={_serialize_bare(value)}"
        for key, value in params.items()
    )


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.1f}"


class _MalformedError(Exception):
    pass


class _Parser:
    """Recursive-descent parser following RFC 8941 §4.2 step by step."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def take(self, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        match = pattern.match(self.text, self.pos)
        if match is None:
            raise _MalformedError(f"expected {what} at {self.pos}")
        self.pos = match.end()
        return match

    def dictionary(self) -> dict[str, Member]:
        self.take(_SP, "space")
        members: dict[str, Member] = {}
        while self.pos < len(self.text):
            key = self.take(_KEY, "a key").group()
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.item_or_inner_list()
            else:
                members[key] = (True, self.params())
            self.take(_OWS, "space")
            if self.pos >= len(self.text):
                return members
            if self.peek() != ",":
                raise _MalformedError(f"expected ',' at {self.pos}")
            self.pos += 1
            self.take(_OWS, "space")
            if self.pos >= len(self.text):
                raise _MalformedError("trailing comma")
        return members

    def item_or_inner_list(self) -> Member:
        if self.peek() != "(":
            return self.bare(), self.params()
        self.pos += 1
        items: list[Item] = []
        while True:
            self.take(_SP, "space")
            if self.peek() == ")":
                self.pos += 1
                return items, self.params()
            items.append((self.bare(), self.params()))
            if self.peek() not in (" ", ")"):
                raise _MalformedError(f"bad inner list at {self.pos}")

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.take(_SP, "space")
            key = self.take(_KEY, "a key").group()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare()
            params[key] = value
        return params

    def bare(self) -> BareItem:
        char = self.peek()
        if char == '"':
            return _ESCAPE.sub(r"\1", self.take(_STRING, "a string").group(1))
        if char == ":":
            encoded = self.take(_BYTES, "a byte sequence").group(1)
            try:
                return base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise _MalformedError("bad base64 in byte sequence") from None
        if char == "?":
            return self.take(_BOOLEAN, "a boolean").group() == "?1"
        if char == "-" or char.isdigit():
            text = self.take(_NUMBER, "a number").group()
            return float(text) if "." in text else int(text)
        return Token(self.take(_TOKEN, "an item").group())
