"""The RFC 8941 subset behind RFC 9421: parse strictly, re-serialise canonically."""

from __future__ import annotations

import pytest

from fedcop.security.httpsig import SignatureError
from fedcop.security.httpsig_sf import Params, Token, parse_dictionary, serialize_inner_list


def test_signature_input_member() -> None:
    parsed = parse_dictionary(
        'sig1=("@method" "@target-uri");created=1736071200;keyid="a\\"b\\\\c";alg=x, sig2=?0',
        "Signature-Input",
    )

    items, params = parsed["sig1"]
    assert items == [("@method", {}), ("@target-uri", {})]
    assert params == {"created": 1736071200, "keyid": 'a"b\\c', "alg": Token("x")}
    assert isinstance(params["alg"], Token)
    assert parsed["sig2"] == (False, {})


def test_bare_values() -> None:
    parsed = parse_dictionary('a=:AQI=:, b=-12.5, c, d;p, e=?1;q="s"', "X")

    assert parsed == {
        "a": (b"\x01\x02", {}),
        "b": (-12.5, {}),
        "c": (True, {}),
        "d": (True, {"p": True}),
        "e": (True, {"q": "s"}),
    }


def test_serialisation_is_canonical() -> None:
    params: Params = {
        "created": 1,
        "keyid": 'k"\\',
        "alg": Token("t"),
        "f": True,
        "b": b"\x00",
        "d": 1.5,
    }
    assert serialize_inner_list(["@method", "x"], params) == (
        '("@method" "x");created=1;keyid="k\\"\\\\";alg=t;f;b=:AA==:;d=1.5'
    )


@pytest.mark.parametrize(
    "text",
    [
        "A=1",  # keys are lower case
        "a=1,",  # trailing comma
        "a=1 b=2",  # missing comma
        'a="unterminated',
        'a="bad \\n escape"',
        "a=:not base64!:",
        "a=?2",
        "a=(1 2",
        "a=(1,2)",
        "a=1234567890123456",  # more than 15 digits
        "a=@",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(SignatureError, match="malformed X header"):
        parse_dictionary(text, "X")
