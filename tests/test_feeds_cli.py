"""``monitor feeds``: add (from a feed or a home page), remove, list, import, export.

A real loopback server plays the site; config.yaml is the shipped one, comments and
all, and every edit must leave the rest of it byte for byte as it was.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor.cli import main
from monitor.config import load_settings
from monitor.opml import OpmlFeed, parse_opml, render_opml
from monitor.samples import voa_feed
from tests.conftest import JsonSink, free_port

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
RSS_TITLE = "World Desk – Europe"
ATOM_TITLE = "Eastern Europe & Russia Live"
WriteConfig = Callable[..., Path]
Capsys = pytest.CaptureFixture[str]
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [A-Z]+ ")


class Terminal(io.StringIO):
    """Typed answers on a terminal (``feeds add`` asks only when stdin is one)."""

    def isatty(self) -> bool:
        return True


@dataclass
class Site:
    server: HTTPServer

    @property
    def home(self) -> str:
        return self.server.url_for("/")

    @property
    def rss(self) -> str:
        return self.server.url_for("/world/rss.xml")

    @property
    def atom(self) -> str:
        return self.server.url_for("/europe.atom")

    def page(self, path: str, head: str) -> str:
        html = f"<!DOCTYPE html><html><head><title>Site</title>{head}</head><body><p>Hi</p></body></html>"
        self.server.expect_request(path).respond_with_data(html, content_type="text/html; charset=utf-8")
        return self.server.url_for(path)


@pytest.fixture
def site(httpserver: HTTPServer) -> Site:
    """A home page linking to two feeds (one relative, one absolute), and the feeds."""
    served = Site(httpserver)
    served.page(
        "/",
        '<link rel="alternate" type="application/rss+xml" title="World" href="/world/rss.xml">'
        '<link rel="stylesheet" href="/style.css">'
        f'<link rel="alternate" type="application/atom+xml" title="Europe" href="{served.atom}">',
    )
    httpserver.expect_request("/world/rss.xml").respond_with_data(
        (DATA / "rss2.xml").read_bytes(), content_type="application/rss+xml"
    )
    httpserver.expect_request("/europe.atom").respond_with_data(
        (DATA / "atom.xml").read_bytes(), content_type="application/atom+xml"
    )
    return served


@pytest.fixture
def shipped(write_config: WriteConfig) -> Path:
    """The shipped config.yaml, in the test's directory."""
    return write_config(SHIPPED)


def inserted(before: str, after: str) -> list[str]:
    """The lines ``after`` adds to ``before``; fails if anything else changed."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops = [
        op for op in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes() if op[0] != "equal"
    ]
    assert all(tag == "insert" for tag, *_ in ops), "".join(difflib.unified_diff(old, new))
    return [line for _, _, _, j1, j2 in ops for line in new[j1:j2]]


def errors(err: str) -> list[str]:
    """What the command said on stderr, without log lines (the loopback server's, say)."""
    return [line for line in err.splitlines() if not LOG_LINE.match(line)]


def deleted(before: str, after: str) -> list[str]:
    """The lines ``after`` lacks; fails if anything else changed."""
    return inserted(after, before)


# -- add ---------------------------------------------------------------------------


def test_add_with_pick_keeps_comments_and_order_and_passes_check(
    site: Site, shipped: Path, capsys: Capsys
) -> None:
    assert main(["feeds", "add", site.home, "--pick", "2", "-c", str(shipped)]) == 0
    assert capsys.readouterr().out == f"added '{ATOM_TITLE}': {site.atom} (every 10m, the default)\n"
    after = shipped.read_text(encoding="utf-8")
    assert inserted(SHIPPED, after) == [f"  - name: {ATOM_TITLE}\n", f"    url: {site.atom}\n"]
    assert after.index(site.atom) < after.index("\nrules:")  # appended to feeds:, before the gap
    assert main(["check", "-c", str(shipped)]) == 0


def test_add_asks_on_a_terminal(
    site: Site, shipped: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("7\nfirst\n1\n"))
    assert main(["feeds", "add", site.home, "--interval", "15m", "-c", str(shipped)]) == 0
    out = capsys.readouterr().out
    assert f"{site.home} links to 2 feeds:\n" in out
    assert f"  1. World  {site.rss}  (RSS)\n  2. Europe  {site.atom}  (Atom)\n" in out
    assert out.count("Add which one? [1-2] ") == 3
    assert out.count("Please answer with a number from 1 to 2.") == 2
    assert out.endswith(f"added '{RSS_TITLE}': {site.rss} (every 15m)\n")
    assert inserted(SHIPPED, shipped.read_text(encoding="utf-8")) == [
        f"  - name: {RSS_TITLE}\n",
        f"    url: {site.rss}\n",
        "    interval: 15m\n",
    ]


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        pytest.param([], io.StringIO("1\n"), "links to 2 feeds; choose one with --pick N:", id="no-terminal"),
        pytest.param([], Terminal(""), "no feed chosen; nothing was added", id="terminal-closed"),
        pytest.param(["--pick", "3"], Terminal("1\n"), "--pick 3: ", id="pick-out-of-range"),
    ],
)
def test_add_without_a_choice_changes_nothing(
    site: Site,
    shipped: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: io.StringIO,
    message: str,
) -> None:
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["feeds", "add", site.home, *argv, "-c", str(shipped)]) == 2
    err = capsys.readouterr().err
    assert message in err
    if "no feed chosen" not in message:
        assert f"1. World  {site.rss}  (RSS)" in err and f"2. Europe  {site.atom}  (Atom)" in err
    assert shipped.read_text(encoding="utf-8") == SHIPPED


def test_add_a_feed_address_directly_then_again(site: Site, shipped: Path, capsys: Capsys) -> None:
    argv = ["feeds", "add", site.rss, "--name", "Europe desk", "--interval", "1h", "-c", str(shipped)]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"added 'Europe desk': {site.rss} (every 1h)\n"
    once = shipped.read_text(encoding="utf-8")
    assert main(["feeds", "add", site.home, "--pick", "1", "-c", str(shipped)]) == 0
    assert capsys.readouterr().out == f"already watched as 'Europe desk': {site.rss}\n"
    assert shipped.read_text(encoding="utf-8") == once


def test_add_takes_the_only_feed_of_a_page(site: Site, shipped: Path, capsys: Capsys) -> None:
    page = site.page("/one", '<link rel="alternate" type="application/atom+xml" href="europe.atom">')
    assert main(["feeds", "add", page, "-c", str(shipped)]) == 0
    assert capsys.readouterr().out.startswith(f"added '{ATOM_TITLE}': {site.atom}")


def test_add_passes_over_a_link_no_client_can_fetch(site: Site, shipped: Path, capsys: Capsys) -> None:
    """A page whose head also links ``http://[::1`` (urllib raised ValueError on it, and
    ``feeds add`` crashed with a traceback) still gives its one real feed."""
    page = site.page(
        "/broken",
        '<link rel="alternate" type="application/rss+xml" href="http://[::1/rss">'
        '<link rel="alternate" type="application/atom+xml" href="europe.atom">',
    )
    assert main(["feeds", "add", page, "-c", str(shipped)]) == 0
    assert capsys.readouterr().out.startswith(f"added '{ATOM_TITLE}': {site.atom}")


def test_add_a_json_feed(httpserver: HTTPServer, shipped: Path, capsys: Capsys) -> None:
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Kyiv Notes", "items": []}
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    url = httpserver.url_for("/feed.json")
    assert main(["feeds", "add", url, "-c", str(shipped)]) == 0
    assert capsys.readouterr().out.startswith(f"added 'Kyiv Notes': {url}")


HOSTILE_TITLE = "Kyiv\x1b]0;owned\x07 Notes\x00\x9b31m"  # a window-title escape, a NUL, a C1 CSI


def test_a_json_feed_title_with_control_characters_becomes_a_clean_name(
    httpserver: HTTPServer, shipped: Path, capsys: Capsys
) -> None:
    """The title became the feed's name as it was, and the edited config was refused
    ("this text holds a control character") at a line the user's file does not have;
    nor may an escape sequence reach the terminal."""
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": HOSTILE_TITLE, "items": []}
    httpserver.expect_request("/feed.json").respond_with_json(feed)
    url = httpserver.url_for("/feed.json")
    assert main(["feeds", "add", url, "-c", str(shipped)]) == 0
    assert capsys.readouterr().out.startswith(f"added 'Kyiv ]0;owned Notes ›31m': {url}")
    assert main(["check", "-c", str(shipped)]) == 0


def test_a_linked_feed_title_with_control_characters_becomes_a_clean_name(
    httpserver: HTTPServer, shipped: Path, capsys: Capsys
) -> None:
    """The page's ``<link title>`` names a feed that has no title of its own; the page
    names its charset only in the header (lxml alone read it as latin-1)."""
    site = Site(httpserver)
    escaped = HOSTILE_TITLE.replace("\x00", "")  # lxml refuses NUL in a document
    url = site.page(
        "/page", f'<link rel="alternate" type="application/rss+xml" title="{escaped}" href="/untitled.xml">'
    )
    httpserver.expect_request("/untitled.xml").respond_with_data(
        "<rss version='2.0'><channel><item><title>x</title><link>http://a.example/1</link></item></channel></rss>",
        content_type="application/rss+xml",
    )
    assert main(["feeds", "add", url, "-c", str(shipped)]) == 0
    added = capsys.readouterr().out
    assert added.startswith("added 'Kyiv ]0;owned Notes›31m': ") and "\x1b" not in added
    assert main(["check", "-c", str(shipped)]) == 0


@pytest.mark.parametrize(
    "name", ["a\x1bb", "two\nlines", "tab\there", "csi\x9b31m"], ids=["esc", "newline", "tab", "c1"]
)
def test_a_name_with_a_control_character_is_a_usage_error(shipped: Path, capsys: Capsys, name: str) -> None:
    """It was refused only once written, at a line of "the edited text" the user never saw."""
    before = shipped.read_text()
    with pytest.raises(SystemExit) as exited:
        main(["feeds", "add", "http://127.0.0.1:9/feed.xml", "--name", name, "-c", str(shipped)])
    assert exited.value.code == 2
    assert "argument --name: a name holds no control characters" in capsys.readouterr().err
    assert shipped.read_text() == before


def test_a_derived_name_already_taken_gets_a_number(site: Site, write_config: WriteConfig) -> None:
    path = write_config(f"feeds:\n  - name: {RSS_TITLE}\n    url: https://elsewhere.example.org/rss\n")
    assert main(["feeds", "add", site.rss, "-c", str(path)]) == 0
    assert [f.name for f in load_settings(path).feeds] == [RSS_TITLE, f"{RSS_TITLE} (2)"]


def test_an_explicit_name_already_taken_is_refused(site: Site, shipped: Path, capsys: Capsys) -> None:
    assert main(["feeds", "add", site.rss, "--name", "BBC World", "-c", str(shipped)]) == 2
    assert "already has a feed named 'BBC World'; choose another --name" in capsys.readouterr().err
    assert shipped.read_text(encoding="utf-8") == SHIPPED


@pytest.mark.parametrize(
    ("path", "head", "message"),
    [
        pytest.param("/plain", "", "no feed found at {url}", id="no-alternates"),
        pytest.param(
            "/broken-link",
            '<link rel="alternate" type="application/rss+xml" href="/plain">',
            "/plain (linked from {url}) is not a feed",
            id="alternate-is-html",
        ),
        pytest.param(
            "/gone-link",
            '<link rel="alternate" type="application/rss+xml" href="/missing.xml">',
            "/missing.xml: fetch: HTTP 500 INTERNAL SERVER ERROR",
            id="alternate-fails",
        ),
    ],
)
def test_add_finds_no_feed(
    site: Site, shipped: Path, capsys: Capsys, path: str, head: str, message: str
) -> None:
    site.page("/plain", "")
    url = site.page(path, head)
    assert main(["feeds", "add", url, "-c", str(shipped)]) == 1
    [line] = errors(capsys.readouterr().err)
    assert line.startswith("monitor: ") and message.format(url=url) in line
    assert shipped.read_text(encoding="utf-8") == SHIPPED


def test_add_an_address_nobody_answers(shipped: Path, capsys: Capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    assert main(["feeds", "add", url, "-c", str(shipped)]) == 1
    assert f"monitor: {url}: fetch: cannot connect" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["add", "https://example.org/", "--interval", "soon"], "bad duration 'soon'", id="interval"
        ),
        pytest.param(["add", "ftp://example.org/"], "not a web address: 'ftp://example.org/'", id="scheme"),
        pytest.param(["add", "http://[::1"], "not a web address: 'http://[::1'", id="broken-ipv6"),
    ],
)
def test_add_usage_mistakes(shipped: Path, capsys: Capsys, argv: list[str], message: str) -> None:
    try:
        code = main(["feeds", *argv, "-c", str(shipped)])
    except SystemExit as e:  # argparse's own usage errors
        code = int(str(e.code))
    assert code == 2
    assert message in capsys.readouterr().err


def test_an_invalid_config_is_not_edited(site: Site, write_config: WriteConfig, capsys: Capsys) -> None:
    text = SHIPPED.replace("  first_poll: recent", "  first_pol: recent")
    path = write_config(text)
    assert main(["feeds", "add", site.rss, "-c", str(path)]) == 2
    err = errors(capsys.readouterr().err)
    assert err[0] == f"monitor: {path} has mistakes; fix them first (feeds were not changed):"
    assert err[1] == f"{path}:9:3: unknown key 'first_pol' (did you mean 'first_poll'?)"
    assert path.read_text(encoding="utf-8") == text


# -- remove ------------------------------------------------------------------------


def test_remove_by_name_and_by_url(shipped: Path, capsys: Capsys) -> None:
    assert main(["feeds", "remove", "UN News", "-c", str(shipped)]) == 0
    assert (
        capsys.readouterr().out
        == "removed 'UN News': https://news.un.org/feed/subscribe/en/news/all/rss.xml\n"
    )
    once = shipped.read_text(encoding="utf-8")
    assert deleted(SHIPPED, once) == [
        "  - name: UN News\n",
        "    url: https://news.un.org/feed/subscribe/en/news/all/rss.xml\n",
    ]
    assert main(["feeds", "remove", "https://www.theverge.com/rss/index.xml", "-c", str(shipped)]) == 0
    assert deleted(once, shipped.read_text(encoding="utf-8")) == [
        "  - name: The Verge (Atom)\n",
        "    url: https://www.theverge.com/rss/index.xml\n",
        "    interval: 30m\n",
    ]
    assert "\n    url: https://www.voanews.com/api/zuyqmejyei\n\nrules:\n" in shipped.read_text(
        encoding="utf-8"
    )
    assert main(["check", "-c", str(shipped)]) == 0


def test_remove_an_unknown_feed(shipped: Path, capsys: Capsys) -> None:
    assert main(["feeds", "remove", "Nope", "-c", str(shipped)]) == 2
    err = capsys.readouterr().err
    assert f"monitor: {shipped}: no feed named or at 'Nope' (feeds: 'BBC World', " in err
    assert shipped.read_text(encoding="utf-8") == SHIPPED


# -- import / export ---------------------------------------------------------------

EMPTY = """# my feeds come from OPML
database: sqlite:///monitor.db  # here

feeds: []   # none yet

rules: []   # later
"""


def _feeds(path: Path) -> list[tuple[str, str, object]]:
    return [(f.name, f.url, f.interval) for f in load_settings(path).feeds]


def test_opml_export_then_import_round_trip_through_files(
    shipped: Path, write_config: WriteConfig, tmp_path: Path, capsys: Capsys
) -> None:
    opml = tmp_path / "feeds.opml"
    assert main(["feeds", "export", "-o", str(opml), "-c", str(shipped)]) == 0
    assert capsys.readouterr().out == f"wrote 8 feeds to {opml}\n"

    fresh = write_config(EMPTY, "fresh.yaml")
    assert main(["feeds", "import", str(opml), "-c", str(fresh)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"8 added, 0 already watched, 0 skipped (8 feeds in {fresh})\n")
    assert _feeds(fresh) == _feeds(shipped)
    text = fresh.read_text(encoding="utf-8")
    assert text.startswith("# my feeds come from OPML\ndatabase: sqlite:///monitor.db  # here\n\nfeeds:")
    assert text.endswith("    interval: 30m\n\nrules: []   # later\n")

    assert main(["feeds", "import", str(opml), "-c", str(fresh)]) == 0
    assert capsys.readouterr().out == f"0 added, 8 already watched, 0 skipped (8 feeds in {fresh})\n"

    again = tmp_path / "again.opml"
    assert main(["feeds", "export", "-o", str(again), "-c", str(fresh)]) == 0
    assert parse_opml(again.read_bytes()) == parse_opml(opml.read_bytes())


def test_export_to_stdout(shipped: Path, capsys: Capsys) -> None:
    assert main(["feeds", "export", "-c", str(shipped)]) == 0
    feeds = parse_opml(capsys.readouterr().out.encode("utf-8"))
    assert feeds[0] == OpmlFeed("BBC World", "https://feeds.bbci.co.uk/news/world/rss.xml", interval="5m")
    assert len(feeds) == 8


def test_import_dedupes_names_and_skips_what_cannot_be_a_feed(
    shipped: Path, tmp_path: Path, capsys: Capsys
) -> None:
    opml = tmp_path / "other.opml"
    opml.write_bytes(
        render_opml(
            [
                OpmlFeed("BBC World", "https://feeds.bbci.co.uk/news/world/rss.xml"),  # already watched
                OpmlFeed("BBC World", "https://feeds.bbci.co.uk/news/rss.xml"),  # same name, new URL
                OpmlFeed("News", "https://a.example.org/rss", interval="2h"),
                OpmlFeed("News", "https://b.example.org/rss", interval="whenever"),
                OpmlFeed("Gopher", "gopher://old.example.org/feed"),
                OpmlFeed("Broken", "http://[::1/rss"),  # urllib raised ValueError: a traceback
                OpmlFeed("Port", "https://c.example.org:99999/rss"),
            ]
        )
    )
    assert main(["feeds", "import", str(opml), "-c", str(shipped)]) == 0
    captured = capsys.readouterr()
    assert "skipped 'Gopher': not an http(s) address: 'gopher://old.example.org/feed'" in captured.err
    assert "skipped 'Broken': not an http(s) address: 'http://[::1/rss'" in captured.err
    assert "skipped 'Port': not an http(s) address: 'https://c.example.org:99999/rss'" in captured.err
    assert "'News': ignoring monitor:interval (bad duration 'whenever'" in captured.err
    assert captured.out.endswith(f"3 added, 1 already watched, 3 skipped (11 feeds in {shipped})\n")
    assert _feeds(shipped)[-3:] == [
        ("BBC World (2)", "https://feeds.bbci.co.uk/news/rss.xml", None),
        ("News", "https://a.example.org/rss", load_settings(shipped).feeds[-2].interval),
        ("News (2)", "https://b.example.org/rss", None),
    ]
    assert load_settings(shipped).feeds[-2].interval is not None


def test_import_of_a_hostile_opml_changes_nothing(shipped: Path, tmp_path: Path, capsys: Capsys) -> None:
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    evil = tmp_path / "evil.opml"
    evil.write_text(
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY l0 "lol">{laughs}]>'
        '<opml version="2.0"><body><outline text="&l9;" xmlUrl="https://example.org/&l9;"/></body></opml>',
        encoding="utf-8",
    )
    assert main(["feeds", "import", str(evil), "-c", str(shipped)]) == 1
    [line] = errors(capsys.readouterr().err)
    assert line.startswith(f"monitor: {evil}: ") and "lollol" not in line
    assert shipped.read_text(encoding="utf-8") == SHIPPED


def test_import_a_missing_file(shipped: Path, tmp_path: Path, capsys: Capsys) -> None:
    assert main(["feeds", "import", str(tmp_path / "nope.opml"), "-c", str(shipped)]) == 1
    assert (
        f"monitor: cannot read {tmp_path / 'nope.opml'}: No such file or directory" in capsys.readouterr().err
    )


def test_import_reads_at_most_16_mib(shipped: Path, capsys: Capsys) -> None:
    """``feeds import /dev/zero`` was read whole: a MemoryError and a traceback."""
    before = shipped.read_text()
    assert main(["feeds", "import", "/dev/zero", "-c", str(shipped)]) == 1
    assert capsys.readouterr().err == "monitor: cannot read /dev/zero: larger than 16 MiB\n"
    assert shipped.read_text() == before


# -- list --------------------------------------------------------------------------


def test_list_before_any_poll_creates_no_database(shipped: Path, capsys: Capsys) -> None:
    assert main(["feeds", "list", "-c", str(shipped)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "URL", "INTERVAL", "LAST", "SUCCESS", "ERRORS", "LAST", "ERROR"]
    first = ["BBC", "World", "https://feeds.bbci.co.uk/news/world/rss.xml", "5m", "not", "polled", "yet"]
    assert lines[1].split() == first
    assert "The Guardian World  https://www.theguardian.com/world/rss" in lines[2]
    assert " 10m* " in lines[2]
    assert lines[-1] == "* the default interval (poll.interval)"
    assert not (shipped.parent / "monitor.db").exists()


def test_list_json_after_run_once(
    httpserver: HTTPServer, json_sink: JsonSink, write_config: WriteConfig, capsys: Capsys
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    down = f"http://127.0.0.1:{free_port()}/feed.xml"
    path = write_config(
        f"""database: sqlite:///monitor.db
poll:
  first_poll: all
channels:
  hook: "{json_sink.url()}"
feeds:
  - name: VOA
    url: {httpserver.url_for("/voa.xml")}
    interval: 5m
  - name: Down
    url: {down}
rules:
  - name: prisoner exchange
    any: ["prisoner exchange"]
    notify: [hook]
"""
    )
    assert main(["run", "--once", "-c", str(path)]) == 0
    capsys.readouterr()

    assert main(["feeds", "list", "--json", "-c", str(path)]) == 0
    voa, gone = json.loads(capsys.readouterr().out)
    assert (voa["name"], voa["url"], voa["interval"], voa["default_interval"]) == (
        "VOA",
        httpserver.url_for("/voa.xml"),
        "5m",
        False,
    )
    assert voa["last_success_at"] is not None and voa["error_count"] == 0 and voa["last_error"] is None
    assert voa["articles"] == 1
    assert (gone["name"], gone["url"], gone["interval"], gone["default_interval"]) == (
        "Down",
        down,
        "10m",
        True,
    )
    assert gone["last_success_at"] is None and gone["last_poll_at"] is not None
    assert gone["error_count"] == 1 and "cannot connect" in gone["last_error"]

    assert main(["feeds", "list", "-c", str(path)]) == 0
    table = capsys.readouterr().out
    assert "VOA " in table and "Down " in table and "cannot connect" in table
