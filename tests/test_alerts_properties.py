"""One alert per matched article, whatever a feed does between polls and whenever the
channel refuses: a property test through the real poller.

A loopback feed serves a sequence of documents drawn from a small pool of items
(guids that come and go, links that change, edits, reorders, items that vanish and
return), a channel refuses some sends, and retention prunes old articles between
polls. After every poll, and after a last pass with the clock past every retry, the
channel must have received each matched stored
article exactly once (``stories: each``), or each story a matched article reports on
(``fold``, the default): never twice (no message key repeats) and never lost. The
database is the judge of what was new and which story it joined; the identity rules
and the story method are tested elsewhere (test_identity, test_skipping, test_stories).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, text
from werkzeug import Request, Response

from monitor.app import App
from monitor.config import Settings
from tests.conftest import Clock, RecordingNotifier
from tests.test_skipping import RSS, Item, rss

_items = st.builds(
    Item,
    guid=st.sampled_from([None, "g1", "g2", "g3"]),
    link=st.sampled_from([None, "https://example.org/1", "https://example.org/2", "/relative"]),
    title=st.sampled_from(["ATACMS strike", "Talks resume", "atacms", ""]),
    text=st.sampled_from(["", "ATACMS near Kherson", "quiet day", "<p>ATACMS</p> again"]),
)


_EXPECTED = {
    # one message per matched article
    "each": "SELECT COUNT(DISTINCT article_id) FROM matches",
    # one message per story a matched article reports on (folding, the default)
    "fold": (
        "SELECT COUNT(DISTINCT s.story_id) FROM matches m"
        " JOIN story_articles s ON s.article_id = m.article_id"
    ),
}


def _expected_messages(database: str, stories: str) -> int:
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(_EXPECTED[stories])).scalar_one())
    finally:
        engine.dispose()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    pool=st.lists(_items, min_size=1, max_size=6),
    polls=st.lists(
        # (items served, the channel refuses, retention prunes old articles before the poll)
        st.tuples(st.lists(st.integers(0, 5), max_size=6), st.booleans(), st.booleans()),
        min_size=1,
        max_size=5,  # at most 5 refusals: the default backoff gives a message 6 attempts
    ),
    stories=st.sampled_from(["each", "fold"]),
)
def test_each_matched_article_alerts_exactly_once(
    httpserver: HTTPServer, pool: list[Item], polls: list[tuple[list[int], bool, bool]], stories: str
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="alerts-property-"))
    database = f"sqlite:///{folder / 'monitor.db'}"
    current: list[bytes] = [b""]

    def serve(request: Request) -> Response:
        del request
        return Response(current[0], content_type=RSS)

    httpserver.clear()
    httpserver.expect_request("/f").respond_with_handler(serve)
    config = Settings.model_validate(
        {
            "database": database,
            "poll": {"first_poll": "all"},
            "channels": {"hook": "json://127.0.0.1:9/never"},
            "feeds": [{"name": "F", "url": httpserver.url_for("/f")}],
            "rules": [{"name": "ATACMS", "any": ["ATACMS"], "notify": ["hook"], "stories": stories}],
        }
    )
    clock, notifier = Clock(), RecordingNotifier()
    try:
        sent = _poll_all(config, clock, notifier, pool, polls, current)
        assert sent == _expected_messages(database, stories), "a matched article's alert was lost"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _poll_all(
    config: Settings,
    clock: Clock,
    notifier: RecordingNotifier,
    pool: list[Item],
    polls: list[tuple[list[int], bool, bool]],
    current: list[bytes],
) -> int:
    """Serve and poll each document; the messages the channel received, each once."""
    with App.from_settings(config, clock=clock, notifier=notifier, strict=True) as app:
        for n, (picks, refuses, prunes) in enumerate(polls):
            if prunes:  # articles fetched over 30 minutes ago that no alert needs go
                app.store.prune(clock(), timedelta(minutes=30), None)
            current[0] = rss([pool[i % len(pool)] for i in picks], str(n))
            notifier.failing = {"hook"} if refuses else set()
            app.run_once()
            clock.advance(timedelta(hours=1))
            keys = Counter(alert.message_key for alert in notifier.sent)
            assert max(keys.values(), default=1) == 1, "an alert was sent twice"
        notifier.failing = set()
        clock.advance(timedelta(days=2))  # past every retry's backoff
        app.run_once()
    keys = Counter(alert.message_key for alert in notifier.sent)
    assert max(keys.values(), default=1) == 1, "an alert was sent twice"
    return len(keys)
