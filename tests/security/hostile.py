"""Hypothesis strategies for hostile input, and the bounded settings every property runs with.

Examples are derandomized (the same ones on every run, in CI and here), so a failure always
reproduces, and capped so the hostile-input files finish in seconds.

A longer fuzz run: `FEDCOP_FUZZ_EXAMPLES=5000 pytest tests/security/test_hostile_*.py` runs
that many random (not derandomized) examples per property; hypothesis prints the seed and the
smallest failing example, which then belongs in a parametrized test here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")
_FUZZ = int(os.environ.get("FEDCOP_FUZZ_EXAMPLES", "0"))

# Pure parsers are cheap: many examples. Through the app (database, signatures): fewer.
PARSER = settings(max_examples=_FUZZ or 200, deadline=None, derandomize=not _FUZZ, database=None)
THROUGH_THE_APP = settings(
    max_examples=_FUZZ or 30,
    deadline=None,
    derandomize=not _FUZZ,
    database=None,
    # The app instance is a function-scoped fixture on purpose: one per test, reused by every
    # example, with the tables checked unchanged after each one.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# URLs meant to break URL handling: bad IPv6 brackets, ports out of range or not numbers,
# control characters, userinfo tricks, other schemes, IDNA that cannot be encoded, giants.
TRICKY_URLS = [
    "https://[::1/users/a",
    "https://[not-ipv6]/users/a",
    "https://peer.test]/users/a",
    "https://peer.test:99999/users/a",
    "https://peer.test:abc/users/a",
    "https://peer.test:-1/users/a",
    "https://peer.test:/users/a",
    "https://peer.test\t/users/a",
    "https://peer.test\r\n/users/a",
    "https://user:pass@peer.test/users/a",
    "https://victim.test@peer.test/users/a",
    "https://peer.test#@victim.test/users/a",
    "https://PEER.test/users/a",
    "https:///users/a",
    "https://",
    "http://",
    "https:peer.test/users/a",
    "javascript:alert(1)",
    "data:application/activity+json,{}",
    "file:///etc/passwd",
    "ftp://peer.test/a",
    "https://xn--/a",
    "https://a..b/users/a",
    "https://" + "a" * 64 + ".test/x",
    "https://" + "é" * 70 + ".test/x",
    "https://\u0000/a",
    "https://\udcff.test/a",
    "https://127.0.0.1/users/a",
    "https://169.254.169.254/latest/meta-data",
    "https://[::ffff:127.0.0.1]/a",
    "https://peer.test/" + "x" * 5000,
]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: wrong types for every field come from here."""
    return st.recursive(
        _scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def urls() -> st.SearchStrategy[str]:
    return (
        st.sampled_from(TRICKY_URLS)
        | st.sampled_from(["https://peer.test/users/remote", "https://victim.test/users/v"])
        | st.builds(lambda tail: f"https://peer.test/{tail}", st.text(max_size=30))
        | st.builds(lambda host: f"https://{host}/x", st.text(min_size=1, max_size=20))
        | st.text(max_size=30)
    )


def field_values() -> st.SearchStrategy[Any]:
    """What a hostile sender puts in an ActivityStreams field."""
    link = st.fixed_dictionaries({"id": urls()}, optional={"type": json_values(3)})
    return urls() | json_values() | link | st.lists(urls() | link, max_size=3)


ACTIVITY_FIELDS = ["@context", "id", "type", "actor", "object", "attributedTo", "to", "cc"]
TYPES = ["Follow", "Create", "Update", "Delete", "Undo", "Accept", "Like", "Announce", "Note"]


def activities() -> st.SearchStrategy[dict[str, Any]]:
    """Activity-shaped dicts whose every field may be wrong, missing, or a trick."""
    obj = st.dictionaries(st.sampled_from(ACTIVITY_FIELDS), field_values(), max_size=6)
    value = field_values() | obj | st.sampled_from(TYPES)
    return st.dictionaries(st.sampled_from(ACTIVITY_FIELDS), value, max_size=8)


def nested(depth: int) -> Any:
    """`{"object": {"object": ...}}`, `depth` levels deep."""
    document: Any = "https://peer.test/notes/1"
    for _ in range(depth):
        document = {"object": document}
    return document


# JSON-LD context tricks: contexts that alias or redefine terms. fedcop reads compacted JSON by
# its plain keys and never expands a context, so none of these may change what is read.
CONTEXT_TRICKS: list[Any] = [
    {"@vocab": "https://evil.test/ns#"},
    {"actor": "https://www.w3.org/ns/activitystreams#object"},
    {"id": "@type", "type": "@id"},
    ["https://www.w3.org/ns/activitystreams", {"actor": {"@id": "as:object", "@type": "@id"}}],
    "https://evil.test/context.jsonld",
    {"@import": "http://127.0.0.1:8080/context"},
    ["https://www.w3.org/ns/activitystreams"] * 200,
    {"@context": {"@context": {"@context": "https://evil.test/"}}},
]


def outcome(error: type[Exception], call: Callable[[], T]) -> T | None:
    """`call()`'s result, or None if it refused with `error` and a reason. Any other exception
    propagates and fails the property: that is the crash the hostile tests look for."""
    try:
        return call()
    except error as exc:
        reason = str(exc)
    assert reason.strip(), f"{error.__name__} without a reason"
    return None
