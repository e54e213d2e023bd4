"""Reading other servers' NodeInfo: the newest schema on the server itself, a sane name."""

from __future__ import annotations

from fedcop.ap.nodeinfo import Software, document_url, software_of

SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/"


def test_the_newest_schema_on_the_same_host_is_chosen() -> None:
    links = {"links": [
        {"rel": SCHEMA + "2.0", "href": "https://lemmy.test/nodeinfo/2.0.json"},
        {"rel": SCHEMA + "2.1", "href": "https://lemmy.test/nodeinfo/2.1.json"},
        {"rel": SCHEMA + "2.2", "href": "https://elsewhere.test/nodeinfo/2.2"},
        {"rel": "https://example.test/other", "href": "https://lemmy.test/other"},
        "junk",
    ]}  # fmt: skip
    assert document_url(links, "lemmy.test") == "https://lemmy.test/nodeinfo/2.1.json"


def test_no_usable_link_gives_none() -> None:
    assert document_url({"links": "x"}, "a.test") is None
    assert document_url([], "a.test") is None
    assert (
        document_url({"links": [{"rel": SCHEMA + "2.1", "href": "ftp://a.test/n"}]}, "a.test")
        is None
    )


def test_software_name_is_read_lowercase_and_checked() -> None:
    assert software_of({"software": {"name": "Lemmy", "version": "0.19.5"}}) == Software(
        "lemmy", "0.19.5"
    )
    assert software_of({"software": {"name": "mbin"}}) == Software("mbin", None)
    assert software_of({"software": {"name": "<script>"}}) is None
    assert software_of({"software": {"name": "x" * 65}}) is None
    assert software_of({"software": "lemmy"}) is None
    assert software_of(None) is None
