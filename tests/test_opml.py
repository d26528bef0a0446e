"""opml: read OPML 1.0/2.0 safely, write OPML 2.0, and get back what was written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import OpmlError
from monitor.opml import NAME_LIMIT, NAMESPACE, OpmlFeed, parse_opml, render_opml

OPML_1 = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!-- exported by an old reader -->
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Top" xmlUrl="https://top.example.org/rss"/>
    <outline text="News">
      <outline title="World">
        <outline text="BBC World" title="ignored" type="rss"
                 xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml" htmlUrl="https://www.bbc.co.uk/news/world"/>
        <outline text="Caf\xe9 &amp; Politics
                       Daily" xmlUrl="https://cafe.example.org/feed?a=1&amp;b=2"/>
      </outline>
      <outline title="Untitled feed" XMLURL="https://upper.example.org/atom"/>
      <outline xmlUrl="https://nameless.example.org/rss"/>
    </outline>
    <outline text="A link, not a feed" type="link" url="https://example.org/"/>
    <outline text="BBC again" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
  </body>
</opml>
"""


def test_opml_1_nested_categories_are_flattened_in_document_order() -> None:
    assert parse_opml(OPML_1) == [
        OpmlFeed("Top", "https://top.example.org/rss"),
        OpmlFeed(
            "BBC World",
            "https://feeds.bbci.co.uk/news/world/rss.xml",
            html_url="https://www.bbc.co.uk/news/world",
            category="News/World",
        ),
        OpmlFeed("Café & Politics Daily", "https://cafe.example.org/feed?a=1&b=2", category="News/World"),
        OpmlFeed("Untitled feed", "https://upper.example.org/atom", category="News"),
        OpmlFeed("https://nameless.example.org/rss", "https://nameless.example.org/rss", category="News"),
    ]


def test_render_is_opml_2_with_the_interval_in_our_namespace() -> None:
    data = render_opml(
        [OpmlFeed("BBC World", "https://feeds.bbci.co.uk/news/world/rss.xml", interval="5m")],
        created=datetime(2024, 5, 31, 18, 0, tzinfo=UTC),
    )
    text = data.decode("utf-8")
    assert text.startswith("<?xml version='1.0' encoding='UTF-8'?>\n<opml")
    assert 'version="2.0"' in text and f'xmlns:monitor="{NAMESPACE}"' in text
    assert "<title>monitor feeds</title>" in text
    assert "<dateCreated>Fri, 31 May 2024 18:00:00 +0000</dateCreated>" in text
    assert (
        '<outline type="rss" text="BBC World" title="BBC World" '
        'xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml" monitor:interval="5m"/>'
    ) in text


def test_round_trip_keeps_names_urls_intervals_and_order() -> None:
    feeds = [
        OpmlFeed("BBC World", "https://feeds.bbci.co.uk/news/world/rss.xml", interval="5m"),
        OpmlFeed('Quotes "&" <tags> ’curly’ Київ', "https://example.org/rss?x=1&y=<2>"),
        OpmlFeed("  spaced \n name\t", "https://example.org/spaced", html_url="https://example.org/"),
        OpmlFeed("Ends with spaces", "https://example.org/ends", interval="1h30m"),
    ]
    back = parse_opml(render_opml(feeds))
    assert [(f.name, f.url, f.interval, f.html_url) for f in back] == [
        ("BBC World", "https://feeds.bbci.co.uk/news/world/rss.xml", "5m", None),
        ('Quotes "&" <tags> ’curly’ Київ', "https://example.org/rss?x=1&y=<2>", None, None),
        ("spaced name", "https://example.org/spaced", None, "https://example.org/"),
        ("Ends with spaces", "https://example.org/ends", "1h30m", None),
    ]


def test_control_characters_are_left_out_rather_than_breaking_the_file() -> None:
    back = parse_opml(render_opml([OpmlFeed("bell\x07 and nul\x00", "https://example.org/x")]))
    assert back == [OpmlFeed("bell and nul", "https://example.org/x")]


def test_names_are_cleaned_like_every_stored_title() -> None:
    """A name goes to the terminal and into config.yaml: C1 controls are read as
    windows-1252 (U+009B, a terminal's escape, was kept), and 5,000 characters are cut."""
    opml = (
        '<opml version="2.0"><body><outline text="Evil\u009b31m \u0092quoted\u0092" xmlUrl="https://e.example/rss"/>'
        f'<outline text="{"n" * 5000}" xmlUrl="https://long.example/rss"/></body></opml>'
    ).encode()
    evil, long = parse_opml(opml)
    assert evil.name == "Evil›31m ’quoted’"
    assert len(long.name) == NAME_LIMIT and long.name.endswith("…")


names = st.text(st.characters(exclude_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=40).filter(
    lambda s: s != "" and s == " ".join(s.split())
)
paths = st.text(st.characters(categories=("Ll", "Nd")), min_size=1, max_size=20)


@given(st.lists(st.tuples(names, paths, st.sampled_from([None, "90s", "5m", "1h30m", "2d"])), max_size=8))
def test_round_trip_property(rows: list[tuple[str, str, str | None]]) -> None:
    unique = {f"https://example.org/{path}": (name, interval) for name, path, interval in rows}
    feeds = [OpmlFeed(name, url, interval=interval) for url, (name, interval) in unique.items()]
    assert parse_opml(render_opml(feeds)) == feeds


# -- hostile and broken files --------------------------------------------------------

LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY lol0 "lol">{LAUGHS}]>
<opml version="2.0"><head><title>&lol9;</title></head>
<body><outline text="&lol9;" xmlUrl="https://example.org/&lol9;"/></body></opml>
""".encode()

SMALL_EXPANSION = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY name "Expanded">]>
<opml version="2.0"><body><outline text="&name;" xmlUrl="https://example.org/rss"/></body></opml>
"""


def _external_entity(secret: Path) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file://{secret}">]>
<opml version="2.0"><body><outline text="&secret;" xmlUrl="https://example.org/rss"/></body></opml>
""".encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(BILLION_LAUGHS, "feeds.opml: ", id="billion-laughs"),
        pytest.param(
            SMALL_EXPANSION, "feeds.opml: declares XML entities; refusing to read it", id="any-entity"
        ),
        pytest.param(b"<opml><body><outline", "feeds.opml: not valid XML: ", id="truncated"),
        pytest.param(b"", "feeds.opml: not valid XML: ", id="empty"),
        pytest.param(
            b"<rss version='2.0'><channel/></rss>", "feeds.opml: not an OPML file (the root", id="rss"
        ),
        pytest.param(
            b"<opml version='2.0'><head/></opml>", "feeds.opml: not an OPML file (no <body>)", id="no-body"
        ),
    ],
)
def test_unreadable_or_hostile_opml_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError) as raised:
        parse_opml(data, "feeds.opml")
    assert str(raised.value).startswith(message)
    assert "lollollol" not in str(raised.value)


def test_external_entities_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    with pytest.raises(OpmlError) as raised:
        parse_opml(_external_entity(secret), "feeds.opml")
    assert "TOP-SECRET" not in str(raised.value)


def test_an_empty_body_has_no_feeds() -> None:
    assert parse_opml(b"<opml version='2.0'><head/><body/></opml>") == []
