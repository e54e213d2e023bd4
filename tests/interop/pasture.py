"""The `fediverse-pasture-inputs` corpus as objects a FakePeer sends, and an HTML safety check.

Each pasture input is a partial object that the pasture's ActivitySender merges onto a Note
skeleton (`{**note, **example}`; a `null` in the example is sent as JSON null, which is how
"without id" and the like are tested) and then wraps in a Create. `pasture_object` does the
same, with the skeleton's id and author on the peer's server, so same-origin rules pass and
everything else — content, tags, attachments, odd fields — reaches fedcop as the corpus has it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from fediverse_pasture_inputs import available

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
PASTURE_HOST = "http://pasture-one-actor/"
PASTURE_ACTOR = PASTURE_HOST + "actor"
# What pasture's ActivitySender puts on a Create whose Note has no @context of its own.
DEFAULT_CONTEXT: list[Any] = [AS_CONTEXT, {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"}]


@dataclass(frozen=True)
class PastureCase:
    source: str  # the pasture input (its support table), e.g. "html_tags"
    index: int
    example: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.source}[{self.index}]"


def pasture_cases() -> list[PastureCase]:
    """Every example of every pasture input, in a stable order."""
    return [
        PastureCase(source, index, copy.deepcopy(example))
        for source, data in sorted(available.items())
        for index, example in enumerate(data.examples)
    ]


# The corpus' html_bad input means `<script>script</script>` but ships `<$script>$script</$script>`
# (a `$` too many in an f-string), which no parser reads as a tag; these restore what it meant,
# plus classic attacks the corpus does not carry. Reported apart from the pasture counts.
_BAD_TAGS = ["body", "html", "head", "title", "meta", "script", "article", "header", "footer",
             "form", "input", "select", "button"]  # fmt: skip
EXTRA_CASES: list[PastureCase] = [
    *(
        PastureCase("extra_html_bad", i, {"content": f"<{tag}>{tag}</{tag}>"})
        for i, tag in enumerate(_BAD_TAGS)
    ),
    PastureCase("extra_attack", 0, {"content": '<a href="javascript:alert(1)">js link</a>'}),
    PastureCase("extra_attack", 1, {"content": '<a href="&#106;avascript:alert(1)">encoded</a>'}),
    PastureCase(
        "extra_attack", 2, {"content": '<img src="x" onerror="alert(1)"><p onclick="x()">p</p>'}
    ),
    PastureCase(
        "extra_attack", 3, {"content": '<p style="position:fixed">styled</p><style>p{}</style>'}
    ),
    PastureCase("extra_attack", 4, {"content": '<iframe src="https://evil.example/"></iframe>x'}),
    PastureCase(
        "extra_attack",
        5,
        {
            "type": "Article",
            "name": "<script>alert(1)</script>Title &lt;script&gt;",
            "summary": '<svg onload="alert(1)"><style>*{}</style></svg>teaser',
            "content": '<form action="javascript:x"><input formaction="javascript:y"></form>',
        },
    ),
]


def _peer_ref(value: Any, actor_id: str) -> Any:
    """The corpus' actors, moved to the peer's server (same shape: string, list or object)."""
    if isinstance(value, str) and value.startswith(PASTURE_HOST):
        name = value.removeprefix(PASTURE_HOST).rsplit("/", 1)[-1]
        return actor_id if value == PASTURE_ACTOR else actor_id.rsplit("/", 1)[0] + "/" + name
    if isinstance(value, list):
        return [_peer_ref(item, actor_id) for item in value]
    if isinstance(value, dict):
        return {k: _peer_ref(v, actor_id) if k == "id" else v for k, v in value.items()}
    return value


def pasture_object(
    case: PastureCase, actor_id: str, *, group: str | None = None, published: datetime | None = None
) -> dict[str, Any]:
    """The object the peer sends for `case`: pasture's skeleton Note with the example merged
    in, on the peer's server, and (given `group`) addressed to that group."""
    origin = actor_id.split("/users/", 1)[0]
    stamp = (published or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    skeleton: dict[str, Any] = {
        "type": "Note",
        "attributedTo": actor_id,
        "to": [PUBLIC],
        "id": f"{origin}/pasture/{case.source}/{case.index}",
        "published": stamp,
        "content": "text",
    }
    note = {**skeleton, **copy.deepcopy(case.example)}
    if "attributedTo" in case.example:
        note["attributedTo"] = _peer_ref(case.example["attributedTo"], actor_id)
    if group is not None:
        to = note.get("to")
        note["to"] = [*(to if isinstance(to, list) else [] if to is None else [to]), group]
        note.setdefault("audience", group)
    return note


def pasture_create(note: dict[str, Any], actor_id: str, activity_id: str) -> dict[str, Any]:
    """Create{note} as pasture's ActivitySender builds it (the note's @context wins)."""
    create: dict[str, Any] = {
        "@context": note.get("@context", DEFAULT_CONTEXT),
        "type": "Create",
        "id": activity_id,
        "actor": actor_id,
        "to": note.get("to"),
        "published": note.get("published"),
        "object": note,
    }
    return {key: value for key, value in create.items() if value is not None or key == "@context"}


# -- is stored HTML safe? ----------------------------------------------------------------------

DANGEROUS_TAGS = frozenset(
    {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "base",
     "link", "meta", "form", "input", "button", "select", "textarea", "svg", "math",
     "template", "noscript", "html", "head", "body", "title"}
)  # fmt: skip
_DANGEROUS_ATTRIBUTES = frozenset({"style", "srcdoc", "formaction", "action", "xmlns"})
_DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:")
_RAW_MARKERS = ("<script", "<iframe", "<style", "javascript:")


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend((tag, name, value or "") for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(tag)


def html_problems(fragment: str) -> list[str]:
    """What in `fragment` could script, style or frame a page (empty when it is safe)."""
    parser = _Markup()
    parser.feed(fragment)
    parser.close()
    problems = [f"<{tag}>" for tag in dict.fromkeys(parser.tags) if tag in DANGEROUS_TAGS]
    for tag, name, value in parser.attributes:
        squashed = "".join(ch for ch in value if ch > " ").lower()  # browsers skip these
        if name.startswith("on") or name in _DANGEROUS_ATTRIBUTES:
            problems.append(f"<{tag} {name}=…>")
        elif squashed.startswith(_DANGEROUS_SCHEMES):
            problems.append(f"<{tag} {name}={value[:40]!r}>")
    lowered = fragment.lower()
    problems.extend(f"raw {marker!r}" for marker in _RAW_MARKERS if marker in lowered)
    return problems
