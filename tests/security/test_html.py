"""Sanitising and Markdown: nothing executable survives, what Mastodon keeps is kept."""

from __future__ import annotations

import pytest

from fedcop.security.html import render_markdown, sanitize, text_to_html, to_text


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<p style="background:url(javascript:alert(1))">x</p>',
        "<iframe src=https://evil.example></iframe>",
        '<svg><animate onbegin="alert(1)"/></svg>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "<!-- <script>alert(1)</script> -->",
        '<form action="https://evil.example"><input name=x></form>',
    ],
)
def test_nothing_executable_survives(hostile: str) -> None:
    cleaned = sanitize(hostile)
    for marker in (
        "<script",
        "onerror",
        "javascript:",
        "<iframe",
        "<svg",
        "style=",
        "data:",
        "<form",
    ):
        assert marker not in cleaned.lower()


def test_mastodon_markup_is_kept() -> None:
    mention = (
        '<p><span class="h-card"><a href="https://m.example/@a" class="u-url mention">@a</a>'
        '</span> see <a href="https://m.example/tags/nhs" class="mention hashtag" rel="tag">'
        "#nhs</a></p>"
    )
    cleaned = sanitize(mention)
    assert 'class="h-card"' in cleaned
    assert 'class="u-url mention"' in cleaned
    assert "#nhs" in cleaned
    assert 'rel="nofollow noopener noreferrer"' in cleaned


def test_markdown_renders_safely_with_headings_below_the_title() -> None:
    rendered = render_markdown("# Heading\n\nSome *care* and **practice**.\n\n<b onclick=x>raw</b>")
    assert "<h2>Heading</h2>" in rendered
    assert "<em>care</em>" in rendered
    assert "<strong>practice</strong>" in rendered
    assert "<b onclick" not in rendered
    assert "&lt;b onclick=x&gt;raw&lt;/b&gt;" in rendered  # raw HTML is shown, not obeyed


def test_text_helpers() -> None:
    assert to_text("<p>Tea &amp; <b>biscuits</b></p><p>later</p>") == "Tea & biscuits\n\nlater"
    assert text_to_html("a < b\n\nc") == "<p>a &lt; b</p><p>c</p>"


def test_length_is_capped() -> None:
    assert len(sanitize("x" * 500_000)) <= 100_000
