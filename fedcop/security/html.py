"""HTML that fedcop shows or sends: Markdown rendered by markdown-it-py, everything sanitised
by nh3 (Ammonia) to an allowlist close to Mastodon's, so what we publish survives there intact
(https://docs.joinmastodon.org/spec/activitypub/#sanitization) and what we receive cannot
script, style or frame anything.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

MAX_HTML_CHARS = 100_000
_TAGS = {
    "p", "br", "span", "a", "del", "s", "pre", "code", "em", "strong", "b", "i", "u",
    "ul", "ol", "li", "blockquote", "h2", "h3", "h4",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href"}, "ol": {"start", "reversed"}}  # classes: see _CLASSES
# Classes Mastodon uses for mentions, hashtags and shortened links; nothing else survives.
_CLASSES = {"a": {"mention", "hashtag", "u-url", "status-link"},
            "span": {"h-card", "invisible", "ellipsis", "mention"}}  # fmt: skip
_SCHEMES = {"http", "https", "mailto"}
_HEADING = re.compile(r"<(/?)h([1-6])>")


def sanitize(untrusted: str) -> str:
    """Remote or user HTML reduced to the allowlist; links get rel=nofollow noopener."""
    return nh3.clean(
        untrusted[:MAX_HTML_CHARS],
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        url_schemes=_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # Raw HTML in Markdown is off: authors write Markdown, not markup.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")


def render_markdown(source: str) -> str:
    """A story's Markdown as safe HTML. Headings start at h2 (the title is the h1)."""
    rendered = _HEADING.sub(
        lambda m: f"<{m[1]}h{min(int(m[2]) + 1, 4)}>", _markdown().render(source)
    )
    return sanitize(rendered)


def to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (for excerpts, titles and search)."""
    text = nh3.clean(fragment.replace("</p>", "</p>\n\n").replace("<br>", "\n"), tags=set())
    return html.unescape(text).strip()


def text_to_html(text: str) -> str:
    """Plain text as escaped paragraphs."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
