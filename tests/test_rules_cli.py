"""``monitor rules test``: rules over the articles of a real SQLite database (windows,
feed globs, per-day counts, alerts per day, JSON), over text and files, and the
progress bar; plus ``Store.read_articles`` underneath."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.commands.rules import MAX_TEXT_BYTES, Progress
from monitor.models import Entry
from monitor.store import PollResult, Store
from tests.test_match import voa_entry

WriteConfig = Callable[[str], Path]
Capsys = pytest.CaptureFixture[str]
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

CONFIG = """
database: {db}
channels:
  c: "json://127.0.0.1:9/x"
feeds:
  - name: VOA News
    url: https://voa.example/feed
  - name: BBC World
    url: https://bbc.example/feed
rules:
  - name: prisoner exchange
    query: '"prisoner exchange" OR "prisoner swap"'
    notify: [c]
  - name: ATACMS
    any: [ATACMS]
    feeds: ["VOA*"]
    notify: [c]
  - name: Taiwan
    query: '"Taiwan Strait"'
    notify: [c]
"""


def _entry(key: str, title: str, text: str, age: timedelta) -> Entry:
    return Entry(key, title, f"https://x.example/{key}", None, NOW - age, "", "", text, text)


@pytest.fixture
def config(write_config: WriteConfig, db_url: str) -> Iterator[Path]:
    """A config and its database with articles from 1, 2 and 10 days ago."""
    path = write_config(CONFIG.format(db=db_url))
    store = Store.open(db_url)
    store.sync_feeds(
        [("VOA News", "https://voa.example/feed"), ("BBC World", "https://bbc.example/feed")], NOW
    )
    ids = {f.name: f.id for f in store.feeds()}
    voa = voa_entry()
    voa = Entry(
        voa.key, voa.title, voa.link, voa.author, NOW - timedelta(days=1), "", "", "", voa.content_text
    )
    result = PollResult(None, None, None)
    store.save_poll(
        ids["VOA News"],
        result,
        [voa, _entry("v2", "Swap agreed", "A prisoner swap was agreed.", timedelta(days=10))],
        {},
        {},
        NOW,
        NOW,
    )
    store.save_poll(
        ids["BBC World"],
        result,
        [
            _entry("b1", "Prisoners exchanged", "Two prisoners exchanged at the border.", timedelta(days=2)),
            _entry("b2", "ATACMS", "ATACMS used again.", timedelta(days=1)),
        ],
        {},
        {},
        NOW,
        NOW,
    )
    store.close()
    yield path


def _day(age: timedelta) -> str:
    return (NOW - age).date().isoformat()


def test_one_rule_over_the_database(config: Path, capsys: Capsys) -> None:
    assert main(["rules", "test", "prisoner exchange", "-c", str(config), "--since", "7d"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # not a terminal: no progress bar
    blocks = out.split("\n\n")
    first_line = blocks[0].splitlines()[0]
    title = "NATO leader supports alliance’s right to defend Ukraine"
    assert first_line.endswith(f"VOA News  {title}  [story S2]")
    assert "  rule: prisoner exchange  matched: prisoner exchange (content)" in blocks[0]
    assert "announced a «prisoner exchange» with Russia" in blocks[0]
    assert (
        blocks[0].splitlines()[-1]
        == "  https://www.voanews.com/a/nato-leader-supports-alliance-s-right-to-defend-ukraine/7637578.html"
    )
    assert "BBC World  Prisoners exchanged" in blocks[1]
    assert "«prisoners exchanged»" in blocks[1]
    assert blocks[2].splitlines() == [
        "prisoner exchange: 2 matches in 3 articles over the last 7 days: about 0.3 alerts/day",
        "  folded by story: 2 alerts (about 0.3/day) instead of 2",
        f"  {_day(timedelta(days=2))}     1  {'█' * 40}",
        f"  {_day(timedelta(days=1))}     1  {'█' * 40}",
    ]


def test_every_rule_as_json(config: Path, capsys: Capsys) -> None:
    assert main(["rules", "test", "--all", "--json", "-c", str(config)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    got = [(x["rule"], x["article"]["feed"], x["article"]["title"], x["terms"]) for x in lines]
    assert got == [
        (
            "prisoner exchange",
            "VOA News",
            "NATO leader supports alliance’s right to defend Ukraine",
            ["prisoner exchange"],
        ),
        ("ATACMS", "VOA News", "NATO leader supports alliance’s right to defend Ukraine", ["ATACMS"]),
        ("prisoner exchange", "VOA News", "Swap agreed", ["prisoner swap"]),
        ("prisoner exchange", "BBC World", "Prisoners exchanged", ["prisoner exchange"]),
    ]  # the BBC ATACMS article is not matched: the rule watches VOA* feeds only
    first = lines[0]
    assert set(first) == {"rule", "article", "field", "terms", "where", "snippet"}
    assert set(first["article"]) == {"id", "feed", "title", "link", "published"}
    assert first["field"] == "content" and first["where"] == {"prisoner exchange": ["content"]}
    text, (start, end) = first["snippet"]["text"], first["snippet"]["highlights"][0]
    assert text[start:end] == "prisoner exchange"
    assert "«prisoner exchange»" in first["snippet"]["marked"]


def test_feed_glob_and_window_narrow_the_articles(config: Path, capsys: Capsys) -> None:
    assert main(["rules", "test", "--all", "-c", str(config), "--feed", "bbc*", "--since", "36h"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "prisoner exchange: 0 matches in 1 articles over the last 36 hours: about 0.0 alerts/day\n"
        "ATACMS: 0 matches in 1 articles over the last 36 hours: about 0.0 alerts/day\n"
        "Taiwan: 0 matches in 1 articles over the last 36 hours: about 0.0 alerts/day\n"
        "Any rule: 0 of 1 articles would alert: about 0.0/day\n"
    )


def test_whole_history_window_starts_at_the_oldest_article(config: Path, capsys: Capsys) -> None:
    assert main(["rules", "test", "--query", "prisoner* OR ATACMS", "-c", str(config)]) == 0
    summary = capsys.readouterr().out.split("\n\n")[-1].splitlines()
    assert summary[0].startswith(
        "prisoner* OR ATACMS: 4 matches in 4 articles over 10 days of stored articles: "
    )
    assert summary[0].endswith("about 0.4 alerts/day")
    assert len(summary) == 5  # the folded count, then three days with matches


def test_no_stored_articles(write_config: WriteConfig, db_url: str, capsys: Capsys) -> None:
    path = write_config(CONFIG.format(db=db_url))
    assert main(["rules", "test", "Taiwan", "-c", str(path), "--since", "7d"]) == 0
    assert capsys.readouterr().out == "No stored articles in that window.\n"


def test_unknown_rule(config: Path, capsys: Capsys) -> None:
    assert main(["rules", "test", "Nope", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"monitor: {config}: no rule named 'Nope' (rules: prisoner exchange, ATACMS, Taiwan)\n"
    assert main(["rules", "test", "ATACMS", "--exact", "-c", str(config)]) == 2
    assert capsys.readouterr().err == (
        "monitor: --exact and --case-sensitive go with --query (rules have their own keys)\n"
    )


def test_a_configured_rule_on_text_ignores_its_feed_globs(config: Path, capsys: Capsys) -> None:
    assert main(["rules", "test", "ATACMS", "-c", str(config), "--text", "ATACMS again"]) == 0
    assert capsys.readouterr().out == "  rule: ATACMS  matched: ATACMS (content)\n  «ATACMS» again\n\n"
    argv = ["rules", "test", "ATACMS", "-c", str(config), "--text", "ATACMS again", "--feed-name", "BBC"]
    assert main(argv) == 0
    assert capsys.readouterr().out == "No match.\n"


def test_query_on_text_needs_no_config(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    assert main(["rules", "test", "--query", "US", "--case-sensitive", "--text", "tell us"]) == 0
    assert capsys.readouterr().out == "No match.\n"
    assert main(["rules", "test", "--query", "US", "--text", "tell us"]) == 0
    assert "tell «us»" in capsys.readouterr().out


def test_file_from_stdin_and_html_file(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Zelénskyy met Stoltenberg"))
    assert main(["rules", "test", "--json", "--query", "Zelensk*", "--file", "-"]) == 0
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["snippet"]["marked"] == "«Zelénskyy» met Stoltenberg"
    page = tmp_path / "page.html"
    page.write_text('<p class="ATACMS">Strikes</p><p>in Kharkiv</p>', encoding="utf-8")
    assert main(["rules", "test", "--json", "--query", "ATACMS", "--file", str(page)]) == 0
    assert capsys.readouterr().out == ""  # markup never matches
    assert main(["rules", "test", "--query", "x", "--file", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_read_articles_in_batches(config: Path, db_url: str) -> None:
    store = Store.open(db_url)
    try:
        total, batches = store.read_articles(batch=3)
        got = list(batches)
        assert total == 4 and [len(b) for b in got] == [3, 1]
        assert [a.id for b in got for a in b] == sorted(a.id for b in got for a in b)
        total, batches = store.read_articles(since=NOW - timedelta(days=3), feeds=["BBC World"])
        assert total == 2 and {a.entry.title for b in batches for a in b} == {"Prisoners exchanged", "ATACMS"}
        total, batches = store.read_articles(feeds=[])
        assert total == 0 and list(batches) == []
    finally:
        store.close()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only() -> None:
    screen = Terminal()
    with Progress.on(screen, 10) as progress:
        progress.advance(4)
        progress.advance(10)
    assert screen.getvalue() == (
        "\r[------------------------------] 0/10 articles"
        "\r[############------------------] 4/10 articles"
        "\r[##############################] 10/10 articles\n"
    )
    quiet = io.StringIO()
    with Progress.on(quiet, 10) as progress:
        progress.advance(10)
    assert quiet.getvalue() == ""
    assert Progress.on(Terminal(), 0).__class__ is not Progress  # nothing to count


def test_bad_since_and_undecodable_file(tmp_path: Path, capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rules", "test", "--all", "--since", "lots"])
    assert exited.value.code == 2
    assert "--since" in capsys.readouterr().err
    binary = tmp_path / "article.txt"
    binary.write_bytes(b"\xff\xfe ATACMS")
    assert main(["rules", "test", "--query", "ATACMS", "--file", str(binary)]) == 2
    assert capsys.readouterr().err == f"monitor: cannot read {binary}: not UTF-8 text\n"


def test_a_text_over_ten_mib_is_refused_before_it_is_read_whole(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--file /dev/zero`` (or a huge log) took all the machine's memory."""
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"ATACMS " * (MAX_TEXT_BYTES // 7 + 1))
    assert main(["rules", "test", "--query", "ATACMS", "--file", str(huge)]) == 2
    assert capsys.readouterr().err == f"monitor: cannot read {huge}: larger than 10 MiB\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(huge.read_bytes()), encoding="utf-8"))
    assert main(["rules", "test", "--query", "ATACMS", "--file", "-"]) == 2
    assert capsys.readouterr().err == "monitor: cannot read standard input: larger than 10 MiB\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff ATACMS"), encoding="utf-8"))
    assert main(["rules", "test", "--query", "ATACMS", "--file", "-"]) == 2
    assert capsys.readouterr().err == "monitor: cannot read standard input: not UTF-8 text\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"an ATACMS strike"), encoding="utf-8"))
    assert main(["rules", "test", "--query", "ATACMS", "--file", "-"]) == 0
    assert "«ATACMS»" in capsys.readouterr().out


def test_a_window_longer_than_the_calendar_reads_every_article(config: Path, capsys: Capsys) -> None:
    """``--since 900000d`` reaches before year 1 (it raised OverflowError): all articles."""
    assert main(["rules", "test", "prisoner exchange", "-c", str(config), "--since", "900000d"]) == 0
    long_window = capsys.readouterr().out
    assert main(["rules", "test", "prisoner exchange", "-c", str(config)]) == 0
    assert long_window.splitlines()[0] == capsys.readouterr().out.splitlines()[0]
