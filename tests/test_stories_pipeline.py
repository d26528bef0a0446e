"""One alert per story, through real parts: real news articles (the ECB+ story set in
``../shared/corpora/stories``) served as feeds of several outlets over loopback, the
real pipeline and store, Apprise to a real webhook sink and a real SMTP server.

The corpus pairs each story with a sibling: a different real event of the same kind
(Warren Jeffs convicted in Texas, 2011; two polygamist leaders arrested in Canada,
2009), which must alert on its own.
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text

from monitor.app import App
from monitor.cli import main
from monitor.folding import story_article
from monitor.models import Entry, Match, Snippet
from monitor.store import PollResult, Store
from monitor.store.stories import StoryPlan
from monitor.stories import WordfreqStats
from tests.conftest import Clock, JsonSink, RecordingNotifier, SettingsFactory, SmtpSink
from tests.corpora import corpus

RULE = {"name": "polygamy", "any": ["polygamist", "polygamy"], "notify": ["hook"]}
JEFFS, CANADA = "t36-ecbplus", "t36-ecb"
START = datetime(2024, 5, 27, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Report:
    """A corpus article as a feed item."""

    key: str
    title: str
    body: str
    outlet: str

    def item(self, published: datetime) -> str:
        paragraphs = "".join(f"<p>{escape(line)}</p>" for line in self.body.splitlines())
        return (
            f"<item><title>{escape(self.title)}</title>"
            f"<link>https://{self.outlet}/{self.key.replace(':', '-')}</link>"
            f"<guid>{escape(self.key)}</guid>"
            f"<pubDate>{published.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<description>{escape(paragraphs)}</description></item>"
        )


@cache
def _stories() -> dict[str, list[Report]]:
    found: dict[str, list[Report]] = {}
    with gzip.open(corpus("stories") / "articles.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            a = json.loads(line)
            outlet = a["outlet"] or f"outlet-{len(found.get(a['story'], []))}.example"
            found.setdefault(a["story"], []).append(Report(a["id"], a["title"], a["body"], outlet))
    return found


def reports(story: str, n: int) -> list[Report]:
    return _stories()[story][:n]


def _feed(items: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>F</title>'
        "<link>https://news.example/</link>" + "".join(items) + "</channel></rss>"
    ).encode()


class Outlets:
    """One feed per outlet on the loopback server; what each carries can change."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.server = httpserver
        self.items: dict[str, list[str]] = {}

    def publish(self, outlet: str, report: Report, when: datetime) -> None:
        self.items.setdefault(outlet, []).insert(0, report.item(when))
        self.server.clear()
        for name, items in self.items.items():
            route = self.server.expect_request(f"/{name}")
            route.respond_with_data(_feed(items), content_type="application/rss+xml")

    def feeds(self, names: list[str]) -> list[dict[str, str]]:
        return [{"name": name, "url": self.server.url_for(f"/{name}")} for name in names]


@pytest.fixture
def outlets(httpserver: HTTPServer) -> Outlets:
    return Outlets(httpserver)


def _settings(settings_factory: SettingsFactory, outlets: Outlets, names: list[str], **extra: Any) -> Any:
    """One poll thread (so the order of polls, and of alerts, is the feeds' order)."""
    rules = extra.pop("rules", None) or [{**RULE, **extra.pop("rule", {})}]
    return settings_factory(
        poll={"first_poll": "all", "concurrency": 1}, feeds=outlets.feeds(names), rules=rules, **extra
    )


def test_one_story_from_many_outlets_alerts_once_and_its_sibling_alerts_apart(
    settings_factory: SettingsFactory, outlets: Outlets, notifier: RecordingNotifier, clock: Clock
) -> None:
    clock.now = START + timedelta(hours=6)
    jeffs = reports(JEFFS, 3)
    names = ["a", "b", "c", "d"]
    for n, (name, report) in enumerate(zip(names, jeffs, strict=False)):
        outlets.publish(name, report, START + timedelta(hours=n))
    outlets.publish("d", reports(CANADA, 1)[0], START + timedelta(hours=4))
    settings = _settings(settings_factory, outlets, names)
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        stories = app.store.stories()
    got = sorted((s.articles, s.outlets, s.rules) for s in stories)
    assert got == [(1, 1, ("polygamy",)), (3, 3, ("polygamy",))]
    titles = sorted(a.title for a in notifier.sent)
    assert len(notifier.sent) == 2, titles
    assert {a.story.id for a in notifier.sent if a.story} == {s.id for s in stories}
    jeffs_alert = next(a for a in notifier.sent if a.story and a.story.articles >= 1 and "Jeffs" in a.title)
    assert jeffs_alert.story is not None and jeffs_alert.story.first_title == jeffs[0].title


def test_a_follow_up_inside_the_window_joins_and_one_after_it_alerts_again(
    settings_factory: SettingsFactory, outlets: Outlets, notifier: RecordingNotifier, clock: Clock
) -> None:
    first, follow_up, late = reports(JEFFS, 3)
    outlets.publish("a", first, START)
    clock.now = START + timedelta(hours=1)
    settings = _settings(settings_factory, outlets, ["a", "b", "c"])
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        outlets.publish("b", follow_up, START + timedelta(days=5))  # inside the 7-day window
        clock.now = START + timedelta(days=5, hours=1)
        app.run_once()
        assert len(notifier.sent) == 1, "the follow-up joined its story: recorded, no message"
        outlets.publish("c", late, START + timedelta(days=20))  # the story closed at day 12
        clock.now = START + timedelta(days=20, hours=1)
        app.run_once()
        stories = sorted(app.store.stories(), key=lambda s: s.id)
    assert [(s.articles, s.rules) for s in stories] == [(2, ("polygamy",)), (1, ("polygamy",))]
    assert len(notifier.sent) == 2


def test_a_rule_that_says_stories_each_alerts_every_article(
    settings_factory: SettingsFactory, outlets: Outlets, notifier: RecordingNotifier, clock: Clock
) -> None:
    clock.now = START + timedelta(hours=6)
    for n, report in enumerate(reports(JEFFS, 3)):
        outlets.publish(f"o{n}", report, START + timedelta(hours=n))
    settings = _settings(settings_factory, outlets, ["o0", "o1", "o2"], rule={"stories": "each"})
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        [story] = app.store.stories()
    assert len(notifier.sent) == 3 and story.articles == 3, "assigned to one story, alerted per article"
    assert story.rules == (), "an 'each' rule records no (story, rule) alert"


def test_a_story_that_matches_a_new_rule_alerts_for_that_rule(
    settings_factory: SettingsFactory, outlets: Outlets, notifier: RecordingNotifier, clock: Clock
) -> None:
    first, second = reports(JEFFS, 2)
    outlets.publish("a", first, START)
    clock.now = START + timedelta(hours=1)
    jeffs_only = {"name": "Jeffs sentenced", "any": ["life in prison"], "notify": ["hook"]}
    settings = _settings(settings_factory, outlets, ["a", "b"], rules=[RULE, jeffs_only])
    assert "life in prison" not in first.body.lower() and "life in prison" in second.body.lower()
    with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
        app.run_once()
        outlets.publish("b", second, START + timedelta(hours=3))
        clock.now = START + timedelta(hours=4)
        app.run_once()
        [story] = app.store.stories()
    assert [a.rules for a in notifier.sent] == [("polygamy",), ("Jeffs sentenced",)]
    assert sorted(story.rules) == ["Jeffs sentenced", "polygamy"]


def test_a_digest_channel_hears_of_later_reports_as_also_reported_by(
    settings_factory: SettingsFactory, outlets: Outlets, json_sink: JsonSink, clock: Clock
) -> None:
    first, later = reports(JEFFS, 2)
    outlets.publish("first", first, START)
    clock.now = START + timedelta(hours=1)  # 09:00; the digest goes out at 18:00
    channel = {"urls": [json_sink.url()], "digest": "0 18 * * *", "story_updates": "digest"}
    settings = _settings(settings_factory, outlets, ["first", "second"], channels={"hook": channel})
    with App.from_settings(settings, clock=clock, strict=True) as app:
        app.run_once()
        outlets.publish("second", later, START + timedelta(hours=2))
        clock.now = START + timedelta(hours=3)
        app.run_once()
        assert json_sink.posts == [], "both wait for the digest"
        clock.now = START + timedelta(hours=10, minutes=1)
        app.courier.deliver()
    [digest] = json_sink.inbox.wait_for(1)
    assert digest["title"] == "Digest: 2 alerts"
    assert "also reported (2 outlets so far)" in digest["message"]
    assert first.title[:40] in digest["message"] and later.title[:40] in digest["message"]


def test_threaded_updates_reach_a_real_smtp_server_under_the_first_message(
    settings_factory: SettingsFactory, outlets: Outlets, smtp_server: SmtpSink, clock: Clock
) -> None:
    first, second, third, fourth = reports(JEFFS, 4)
    channel = {"urls": [smtp_server.url()], "story_updates": "thread"}
    settings = _settings(settings_factory, outlets, ["a", "b", "c", "d"], channels={"hook": channel})
    with App.from_settings(settings, clock=clock, strict=True) as app:
        for n, (name, report) in enumerate([("a", first), ("b", second), ("c", third)]):
            outlets.publish(name, report, START + timedelta(minutes=10 * n))
            clock.now = START + timedelta(minutes=10 * n + 5)
            app.run_once()
        outlets.publish("d", fourth, START + timedelta(hours=2))
        clock.now = START + timedelta(hours=2, minutes=5)
        app.run_once()
    alert, update, later_update = smtp_server.inbox.wait_for(3)
    reference = alert["References"]
    assert reference.startswith("<monitor-story-") and alert["X-Monitor-Story"]
    assert alert["In-Reply-To"] is None and alert["Subject"].startswith("[polygamy] ")
    for message in (update, later_update):
        assert (message["In-Reply-To"], message["References"]) == (reference, reference)
        assert message["Subject"] == f"Re: [polygamy] {first.title}"
    assert "Also reported by b:" in update.get_body(("plain",)).get_content()
    assert len(smtp_server.messages) == 3, "the third report fell in the same hour as the second: no message"


_REPEATABLE_READ = "options=-c%20default_transaction_isolation%3Drepeatable%5C%20read"


@pytest.mark.postgres
@pytest.mark.parametrize("server_default", ["read committed", "repeatable read"])
def test_two_daemons_on_postgresql_racing_on_one_story_end_with_one_story(
    pg_url: str, server_default: str
) -> None:
    """Two stores (two connection pools, as two daemons have) write reports of one event
    at the same moment; the story step's advisory lock makes the second join the first.
    Also where the server, database or role makes REPEATABLE READ the default: the
    second's snapshot would then predate the first's story (two stories, two alerts), so
    the store asks for READ COMMITTED itself."""
    now = START + timedelta(hours=1)
    jeffs = reports(JEFFS, 2)
    url = pg_url if server_default == "read committed" else f"{pg_url}?{_REPEATABLE_READ}"
    stores = [Store.open(url) for _ in jeffs]
    try:
        stores[0].sync_feeds([("A", "https://a.example/f"), ("B", "https://b.example/f")], now)
        feeds = {f.name: f.id for f in stores[0].feeds()}
        barrier = threading.Barrier(len(stores))

        def save(store: Store, feed: str, report: Report) -> None:
            barrier.wait(10)
            _save_matched(store, feeds[feed], report, now, feed=feed)

        threads = [
            threading.Thread(target=save, args=(store, name, report))
            for store, name, report in zip(stores, ["A", "B"], jeffs, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        [story] = stores[0].stories()
        assert (story.articles, story.outlets, story.rules) == (2, 2, ("polygamy",))
        assert [c.pending for c in stores[0].channel_statuses()] == [1], "one alert for the story"
    finally:
        for store in stores:
            store.close()


STATS = WordfreqStats()


def _entry(report: Report, when: datetime) -> Entry:
    return Entry(
        report.key, report.title, f"https://x.example/{report.key}", None, when, "", "", "", report.body
    )


def _one_story_from_two_outlets(
    settings_factory: SettingsFactory, outlets: Outlets, notifier: RecordingNotifier, clock: Clock
) -> App:
    """An app whose one cycle stored two outlets' reports of one event (one story)."""
    clock.now = START + timedelta(hours=6)
    for n, report in enumerate(reports(JEFFS, 2)):
        outlets.publish(f"o{n}", report, START + timedelta(hours=n))
    app = App.from_settings(
        _settings(settings_factory, outlets, ["o0", "o1"]), clock=clock, notifier=notifier
    )
    try:
        app.run_once()
    except BaseException:
        app.close()
        raise
    return app


def test_monitor_stories_lists_stories_and_shows_one(
    settings_factory: SettingsFactory,
    outlets: Outlets,
    notifier: RecordingNotifier,
    clock: Clock,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _one_story_from_two_outlets(settings_factory, outlets, notifier, clock) as app:
        [story] = app.store.stories()
    config = tmp_path / "stories.yaml"
    config.write_text(f"database: {db_url}\n", encoding="utf-8")
    assert main(["stories", "-c", str(config)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == [
        "ID",
        "FIRST",
        "SEEN",
        "LAST",
        "SEEN",
        "OUTLETS",
        "ARTICLES",
        "RULES",
        "ALERTED",
        "FIRST",
        "REPORT",
    ]
    assert listing[1].split()[0] == str(story.id) and "polygamy" in listing[1]
    assert main(["stories", "--rule", "nothing", "-c", str(config)]) == 0
    assert "No stories yet" in capsys.readouterr().out
    assert main(["stories", "--since", "900000d", "-c", str(config)]) == 0  # before year 1: all of them
    assert capsys.readouterr().out.splitlines()[1].split()[0] == str(story.id)
    assert main(["stories", "show", str(story.id), "-c", str(config)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"Story {story.id}: ") and "2 article(s) from 2 outlet(s)" in shown
    assert "Alerted: polygamy" in shown and " first " in shown and "o1" in shown
    assert main(["stories", "--json", "-c", str(config)]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["articles"], listed["rules"]) == (story.id, 2, ["polygamy"])
    assert main(["stories", "show", "999", "-c", str(config)]) == 1


@pytest.mark.parametrize("damage", ['{"created": tru', "[1, 2]", '"created"', "[" * 100_000, "null"])
def test_stories_show_lists_a_report_whose_explanation_is_damaged(
    settings_factory: SettingsFactory,
    outlets: Outlets,
    notifier: RecordingNotifier,
    clock: Clock,
    damage: str,
) -> None:
    """A hand-edited or cut-off explanation must not hide the story's reports from people."""
    from sqlalchemy import update

    from monitor.store.tables import STORY_ARTICLES

    with _one_story_from_two_outlets(settings_factory, outlets, notifier, clock) as app:
        [story] = app.store.stories()
        intact = app.store.story(story.id)
        assert intact is not None and [r.started for r in intact.reports] == [True, False]
        with app.store.engine.begin() as conn:
            conn.execute(update(STORY_ARTICLES).values(explanation=damage))
        shown = app.store.story(story.id)
    assert shown is not None
    assert [(r.feed, r.started) for r in shown.reports] == [("o0", False), ("o1", False)]


def _save_matched(
    store: Store,
    feed_id: int,
    report: Report,
    now: datetime,
    published: datetime | None = None,
    feed: str = "A",
) -> None:
    """One poll of ``feed`` that stores ``report`` matched by the folding rule, with its story step."""
    entry = _entry(report, published or now)
    match = Match("polygamy", "content", ("polygamist",), Snippet("polygamist"))
    plan = StoryPlan({entry.key: story_article(entry, feed)}, frozenset(["polygamy"]), stats=STATS)
    store.save_poll(
        feed_id,
        PollResult(None, None, feed),
        [entry],
        {entry.key: [match]},
        {"polygamy": ["hook"]},
        now,
        now + timedelta(hours=1),
        stories=plan,
    )


def test_a_pruned_articles_id_given_again_by_sqlite_starts_a_story_of_its_own(tmp_path: Path) -> None:
    """SQLite takes a new row's id from the largest one left, so the next article after
    the newest was pruned gets its id again, while its story stays (stories outlive
    their reports). The new article's story key used to be that story's (``a1``): every
    poll of the feed then failed on the unique key, and stored nothing, for good."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        store.sync_feeds([("A", "https://a.example/f")], START)
        feed_id = store.feeds()[0].id
        first, later = reports(JEFFS, 1)[0], reports("t02-ecb", 2)
        # dated late, so its story is still recent when its article goes: the story stays
        _save_matched(store, feed_id, first, START, published=START + timedelta(days=59))
        with store.engine.begin() as conn:  # its alert went out: nothing keeps the article
            conn.execute(text("UPDATE deliveries SET state = 'sent'"))
        then = START + timedelta(days=60)
        pruned = store.prune(then, timedelta(days=30), timedelta(days=30))
        for n, report in enumerate(later):
            _save_matched(store, feed_id, report, then + timedelta(minutes=n))
        stories = store.stories()
    finally:
        store.close()
    assert pruned.articles == 1
    assert sum(s.articles for s in stories) == 3, "both later reports stored, each in a story"
    assert len({s.id for s in stories}) == len(stories) >= 2


def test_a_poll_with_two_reports_of_a_new_event_alerts_for_the_first_and_keeps_the_hours_update(
    tmp_path: Path,
) -> None:
    """Feeds list newest first. The story step takes a poll's reports in publication order,
    so the older report starts the story, but the alert used to be claimed in feed order:
    it named the newer report, the story's own first report then counted as a later one
    and queued a threaded update in the same poll, and that update used the hour's slot,
    so another outlet's report twenty minutes later sent nothing."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    now = START + timedelta(hours=6)
    first, second, third = reports(JEFFS, 3)
    match = Match("polygamy", "content", ("polygamist",), Snippet("polygamist"))

    def save(feed: str, found: list[tuple[Report, datetime]], when: datetime) -> None:
        entries = [_entry(report, published) for report, published in found]
        plan = StoryPlan(
            {e.key: story_article(e, feed) for e in entries},
            frozenset(["polygamy"]),
            updates={"hook": "thread"},
            stats=STATS,
        )
        store.save_poll(
            feeds[feed],
            PollResult(None, None, feed),
            entries,
            {e.key: [match] for e in entries},
            {"polygamy": ["hook"]},
            when,
            when + timedelta(hours=1),
            stories=plan,
        )

    try:
        store.sync_feeds([("A", "https://a.example/f"), ("B", "https://b.example/f")], now)
        feeds = {f.name: f.id for f in store.feeds()}
        save("A", [(second, now - timedelta(hours=1)), (first, now - timedelta(hours=3))], now)
        save("B", [(third, now + timedelta(minutes=15))], now + timedelta(minutes=20))
        with store.engine.connect() as conn:
            keys: dict[int, str] = {
                int(i): str(k) for i, k in conn.execute(text("SELECT id, key FROM articles"))
            }
            alerted = conn.execute(text("SELECT article_id FROM story_alerts")).scalars().all()
            sent = conn.execute(text("SELECT article_id, kind FROM deliveries ORDER BY id")).all()
    finally:
        store.close()
    assert [keys[a] for a in alerted] == [first.key], "the alert names the story's first report"
    assert [(keys[a], kind) for a, kind in sent] == [(first.key, "alert"), (third.key, "update")]
