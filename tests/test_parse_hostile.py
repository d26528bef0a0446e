"""parse against what a hostile or broken publisher sends: numbers, dates, text, byte order
marks, links. Nothing but ParseError leaves ``parse``; one bad entry never costs the others.

The classes of issue 10: "a feed stops forever" (an exception other than FeedError on
every poll: ``<ttl>²</ttl>``, a lone surrogate, a year-1 date), "alerts are lost" (a
UTF-16 feed that does not parse at all), and containment (an entry that cannot be read
is dropped with a reason, the rest stored).
"""

from __future__ import annotations

import encodings.aliases
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.entries import MAX_DROPPED, bounded_reasons, collect, make_entry
from monitor.errors import ParseError
from monitor.models import Entry, ParsedFeed
from monitor.parse import _LONG_RUN, MAX_RUN, has_long_run, parse
from tests.test_parse import FETCHED_AT, atom, fetched, rss

WEEK = 7 * 24 * 3600.0
GOOD = "<item><title>Kharkiv: the good one</title><guid>good</guid></item>"


def titles(parsed: ParsedFeed) -> list[str]:
    return [e.title for e in parsed.entries]


def assert_clean(entry: Entry) -> None:
    """Every string of an entry is storable anywhere: valid UTF-8, no NUL or other C0
    control (tab, LF and CR allowed in HTML and text), titles bounded."""
    for name in (
        "key",
        "title",
        "link",
        "author",
        "summary_html",
        "summary_text",
        "content_html",
        "content_text",
    ):
        value = getattr(entry, name)
        if value is None:
            continue
        value.encode("utf-8")  # raises on a lone surrogate
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in value), (name, value[:80])
        assert "\x7f" not in value
    assert len(entry.title) <= 1000 and len(entry.key) <= 512


# --- numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        ("45", 2700.0),
        (" 45 ", 2700.0),
        ("²", None),
        ("１２", None),
        ("0", None),
        ("-5", None),
        ("4.5", None),
        ("soon", None),
        ("99999999999999", WEEK),
        ("9" * 5000, WEEK),
    ],
    ids=[
        "minutes",
        "padded",
        "superscript-two",
        "fullwidth",
        "zero",
        "negative",
        "fraction",
        "garbage",
        "huge",
        "5000-digits",
    ],
)
def test_rss_ttl_is_ascii_minutes_at_most_a_week(ttl: str, seconds: float | None) -> None:
    """``"²".isdigit()`` is True but ``int("²")`` raises: that stopped the feed for good."""
    parsed = parse(fetched(rss(GOOD, channel=f"<ttl>{ttl}</ttl>")))
    assert parsed.ttl == seconds
    assert titles(parsed) == ["Kharkiv: the good one"]


def test_json_feed_numbers_never_break_the_document() -> None:
    digits = "9" * 5000
    body = (
        '{"version": "https://jsonfeed.org/version/1.1", "items": ['
        f'{{"id": {digits}, "title": "huge id"}}, {{"id": NaN, "title": "nan id"}},'
        '{"id": 1e999, "title": "infinite id"}, {"id": -0, "title": "zero id"}]}'
    ).encode()
    parsed = parse(fetched(body, content_type="application/feed+json"))
    assert titles(parsed) == ["huge id", "nan id", "infinite id", "zero id"]
    keys = [e.key for e in parsed.entries]
    assert keys[0].startswith("guid:sha256:") and keys[2] == "guid:inf" and keys[3] == "guid:0"
    assert keys[1].startswith("hash:")  # NaN is no id


# --- dates ----------------------------------------------------------------------------

# (date, dated): a date no calendar conversion survives, or before 1900, is no date (the
# fetch time, undated); one in the future is the fetch time too, but dated.
DATES = [
    ("Mon, 01 Jan 0001 00:00:00 +0100", "0001-01-01T00:00:00+01:00", False),
    ("Mon, 01 Jan 0001 00:00:00 -1200", "0001-01-01T00:00:00-12:00", False),
    ("Fri, 31 Dec 9999 23:59:59 -0100", "9999-12-31T23:59:59-01:00", False),
    ("Fri, 31 Dec 9999 23:59:59 +1400", "9999-12-31T23:59:59+14:00", True),
    ("Sat, 01 Jan 0100 00:00:00 GMT", "0100-01-01T00:00:00Z", False),
    ("Sun, 31 Dec 1899 23:59:59 GMT", "1899-12-31T23:59:59Z", False),
]
DATE_IDS = ["year-1-east", "year-1-west", "year-9999-west", "year-9999-future", "year-100", "1899"]


@pytest.mark.parametrize(("date", "dated"), [(d[0], d[2]) for d in DATES], ids=DATE_IDS)
def test_rss_dates_at_the_ends_of_the_calendar_take_the_fetch_time(date: str, dated: bool) -> None:
    parsed = parse(
        fetched(rss(f"<item><title>T</title><guid>t</guid><pubDate>{date}</pubDate></item>" + GOOD))
    )
    entry = parsed.entries[0]
    assert (entry.published, entry.dated) == (FETCHED_AT, dated)
    assert len(parsed.entries) == 2


@pytest.mark.parametrize(("date", "dated"), [(d[1], d[2]) for d in DATES], ids=DATE_IDS)
def test_atom_dates_at_the_ends_of_the_calendar_take_the_fetch_time(date: str, dated: bool) -> None:
    parsed = parse(fetched(atom(f"<entry><title>T</title><id>t</id><updated>{date}</updated></entry>")))
    entry = parsed.entries[0]
    assert (entry.published, entry.dated) == (FETCHED_AT, dated)


@pytest.mark.parametrize(
    ("date", "dated"),
    [(d[1], d[2]) for d in DATES] + [("2024-05-31T16:00:00+99:59", False), ("9" * 200, False)],
    ids=[*DATE_IDS, "impossible-offset", "over-long"],
)
def test_json_feed_dates_at_the_ends_of_the_calendar_take_the_fetch_time(date: str, dated: bool) -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "t", "title": "T", "date_published": date}],
        }
    ).encode()
    entry = parse(fetched(body)).entries[0]
    assert (entry.published, entry.dated) == (FETCHED_AT, dated)


def test_an_ordinary_date_in_any_time_zone_is_kept_in_utc() -> None:
    parsed = parse(
        fetched(rss("<item><title>T</title><pubDate>Fri, 31 May 2024 16:00:00 -1100</pubDate></item>"))
    )
    assert parsed.entries[0].published == min(datetime(2024, 6, 1, 3, 0, tzinfo=UTC), FETCHED_AT)


# --- text -----------------------------------------------------------------------------

TEXTS = [
    ("<title>Kyiv &#xD800; talks</title>", "Kyiv \ufffd talks"),
    ("<title>Kyiv &#55296;&#xDFFF; talks</title>", "Kyiv \ufffd\ufffd talks"),
    ("<title>Kyiv &#99999999999999999999; talks</title>", "Kyiv \ufffd talks"),
    ("<title>Kyiv &#x110000; talks</title>", "Kyiv \ufffd talks"),
    ("<title>Kyiv &#0; talks</title>", "Kyiv talks"),
    ("<title>Kyiv\x00 talks</title>", "Kyiv talks"),
    ("<title>Kyiv\x01\x08\x1b\x7f talks</title>", "Kyiv talks"),
    ("<title>Kyiv</title><description>&lt;p&gt;x&amp;#xD800;y&lt;/p&gt;</description>", "Kyiv"),
    ("<title>Kyiv</title><description><![CDATA[<p>a\x00b&#xD800;</p>]]></description>", "Kyiv"),
    ("<title>Kyiv</title><author>a@b (J@@)</author>", "Kyiv"),
]


@pytest.mark.parametrize(
    ("item", "title"),
    TEXTS,
    ids=[
        "lone-surrogate-hex",
        "lone-surrogates-decimal",
        "charref-too-big",
        "charref-past-unicode",
        "charref-nul",
        "raw-nul",
        "control-characters",
        "surrogate-in-escaped-html",
        "nul-and-surrogate-in-cdata",
        "utf-8-encoded-surrogate-in-author",
    ],
)
def test_text_no_database_or_mailer_accepts_never_leaves_parse(item: str, title: str) -> None:
    """A lone surrogate in a title crashed feedparser itself (UnicodeEncodeError) on every poll."""
    body = rss(f"<item>{item}<guid>bad</guid></item>" + GOOD).replace(b"@@", b"\xed\xa0\x80")
    parsed = parse(fetched(body))
    assert titles(parsed) == [title, "Kharkiv: the good one"]
    for entry in parsed.entries:
        assert_clean(entry)


def test_a_lone_surrogate_in_a_json_feed_is_removed() -> None:
    item = {"id": "1", "title": "a\ud800b", "content_html": "<p>x\udfff</p>", "summary": "\x00s"}
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]}).encode()
    [entry] = parse(fetched(body)).entries
    assert entry.title == "a b"
    assert_clean(entry)


def test_a_two_megabyte_title_is_cut_to_a_thousand_characters() -> None:
    parsed = parse(fetched(rss(f"<item><title>{'Kharkiv ' * 250_000}</title></item>" + GOOD)))
    assert len(parsed.entries[0].title) == 1000 and parsed.entries[0].title.endswith("…")
    assert_clean(parsed.entries[0])


# --- byte order marks -----------------------------------------------------------------

ZURICH = rss("<item><title>Talks in Zürich</title><guid>z</guid></item>")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xfe\xff" + ZURICH.decode().encode("utf-16-be"), "application/rss+xml; charset=utf-16"),
        (b"\xfe\xff" + ZURICH.decode().encode("utf-16-be"), "application/rss+xml; charset=utf-8"),
        (b"\xff\xfe" + ZURICH.decode().encode("utf-16-le"), "application/rss+xml; charset=utf-8"),
        (b"\xff\xfe" + ZURICH.decode().encode("utf-16-le"), "text/xml; charset=utf-16be"),
        (b"\xef\xbb\xbf" + ZURICH, "application/rss+xml; charset=latin-1"),
        (b"\xef\xbb\xbf" + ZURICH, "text/xml"),
        (b"\xff\xfe\x00\x00" + ZURICH.decode().encode("utf-32-le"), "application/rss+xml; charset=utf-8"),
    ],
    ids=[
        "utf-16be-bom-as-utf-16",
        "utf-16be-bom-as-utf-8",
        "utf-16le-bom-as-utf-8",
        "utf-16le-bom-as-utf-16be",
        "utf-8-bom-as-latin-1",
        "utf-8-bom-as-text-xml",
        "utf-32le-bom-as-utf-8",
    ],
)
def test_a_byte_order_mark_wins_over_the_charset_it_contradicts(body: bytes, content_type: str) -> None:
    assert titles(parse(fetched(body, content_type=content_type))) == ["Talks in Zürich"]


# --- charset labels -------------------------------------------------------------------

# Every name Python knows a codec by (text codecs, and the bytes-to-bytes ones such as
# base64 or zlib that no text decodes with), a few a server may invent, and any text.
CODEC_NAMES = sorted({*encodings.aliases.aliases, *encodings.aliases.aliases.values(), "x-user-defined"})
LABELS = st.one_of(
    st.sampled_from(CODEC_NAMES),
    st.text(max_size=30),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=300, deadline=None)
@given(
    declared=LABELS,
    header=st.one_of(st.none(), LABELS),
    media=st.sampled_from(["text/xml", "application/rss+xml"]),
)
def test_any_charset_label_in_the_declaration_or_the_header_parses_or_raises_parse_error(
    declared: str, header: str | None, media: str
) -> None:
    """A label names the codec feedparser decodes the body with; whatever it says (a
    bytes-to-bytes codec, a NUL, a quote, a name no codec has), ``parse`` returns clean
    entries or raises ParseError. A NUL in a declared label once raised ValueError."""
    body = rss(GOOD).replace(
        b'encoding="UTF-8"', b'encoding="' + declared.encode("utf-8", "surrogatepass") + b'"', 1
    )
    content_type = media if header is None else f"{media}; charset={header}"
    try:
        parsed = parse(fetched(body, content_type=content_type))
    except ParseError:
        return
    for entry in parsed.entries:
        assert_clean(entry)


# --- links ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    ["http://a..b/x", "http://☃..com/x", "http://exa mple.com/", "http://[::1/x", "http://x.com:99999/"],
    ids=["empty-label", "idna", "space-in-host", "broken-ipv6", "port-too-big"],
)
def test_an_entry_with_a_link_nobody_can_fetch_is_kept(link: str) -> None:
    """The link stays what the publisher wrote (identity does not change); fetching it is
    the fetcher's FetchError, recorded on the article, not an exception in the poll."""
    parsed = parse(fetched(rss(f"<item><title>Odd link</title><link>{link}</link></item>" + GOOD)))
    assert titles(parsed) == ["Odd link", "Kharkiv: the good one"]
    assert parsed.dropped == ()


# --- containment ------------------------------------------------------------------------


def _entry(title: str) -> Entry | None:
    if title.startswith("bad"):
        raise ValueError(f"cannot read {title}")
    return make_entry(
        guid=title,
        link=None,
        title=title,
        author=None,
        published=None,
        fetched_at=FETCHED_AT,
        summary=("", ""),
        content=("", ""),
    )


def test_an_entry_that_cannot_be_read_is_dropped_with_a_reason_and_the_rest_kept() -> None:
    entries, dropped = collect(["a", "bad one", "b"], _entry)
    assert [e.title for e in entries] == ["a", "b"]
    assert dropped == ["entry 2: ValueError: cannot read bad one"]


def test_drop_reasons_are_bounded() -> None:
    _, dropped = collect([f"bad {i}" for i in range(100)], _entry)
    kept = bounded_reasons(dropped)
    assert len(kept) == MAX_DROPPED
    assert kept[0] == "entry 1: ValueError: cannot read bad 0"
    assert kept[-1] == f"and {100 - MAX_DROPPED + 1} more entries"


def test_a_bug_is_not_a_drop() -> None:
    def broken(item: str) -> Entry | None:
        raise AttributeError(item)

    with pytest.raises(AttributeError):
        collect(["a"], broken)


def test_the_cut_entry_of_a_truncated_body_is_reported_as_dropped() -> None:
    body = rss(GOOD + "<item><title>Kharkiv: cut short</title><guid>cut</guid><description>Resid")
    parsed = parse(fetched(body))
    assert titles(parsed) == ["Kharkiv: the good one"]
    assert parsed.dropped == ("entry 2: the body ends inside it",)


def test_a_body_that_is_not_a_feed_still_raises_parse_error() -> None:
    with pytest.raises(ParseError, match=r"^parse: not a feed"):
        parse(fetched(b"<foo>&#xD800;</foo>"))


@pytest.mark.parametrize(
    "author",
    ["a@" + "a." * 16_000 + "!", "x" * 100_000, "Jane Doe " + "x" * 5_000 + " (jane@news.example.com)"],
    ids=["issue-562-labels", "100k-run", "long-run-and-an-address"],
)
def test_an_author_that_makes_feedparsers_email_regex_quadratic_parses_at_once(author: str) -> None:
    """feedparser's e-mail regex (its issue 562) took seconds to a minute on such authors,
    so the feed failed on every poll at ``parse_timeout``; runs over MAX_RUN word
    characters are cut before it reads them, and the entry is kept."""
    body = rss(f"<item><title>Kharkiv</title><guid>g1</guid><author>{author}</author></item>" + GOOD)
    parsed = parse(fetched(body))
    assert titles(parsed) == ["Kharkiv", "Kharkiv: the good one"]
    first = parsed.entries[0]
    assert first.author is not None and len(first.author) <= 2000
    assert_clean(first)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"a", b"Z", b"9", b"_", b".", b"+", b"-", b" ", b"<", b"\xff", b"\x00", b"@"]),
            st.integers(MAX_RUN - 3, MAX_RUN + 3).map(lambda n: b"x" * n),
        ),
        max_size=12,
    )
)
def test_the_fast_long_run_check_answers_as_the_regex_does(parts: list[bytes]) -> None:
    """``has_long_run`` (a byte map and a substring search) stands for ``_LONG_RUN.search``
    on every body; runs just under, at and over the limit, split by any byte."""
    document = b"".join(parts)
    assert has_long_run(document) == bool(_LONG_RUN.search(document))


def test_word_runs_up_to_the_limit_are_left_as_they_are() -> None:
    """The longest run in the real-feed corpus is 580 characters; MAX_RUN leaves those."""
    run = "k" * MAX_RUN
    parsed = parse(
        fetched(rss(f"<item><title>T</title><guid>g</guid><description>{run} {run}k</description></item>"))
    )
    assert parsed.entries[0].summary_text == f"{run} {run}"
