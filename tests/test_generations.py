"""What a reload retires (an HTTP client, worker pools) is closed once no poll that began
before it still runs: at once when none does, never under a running poll, always in
the end, so a daemon reloaded for months holds no old sockets or pools."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.app import App
from monitor.generations import Generations
from monitor.samples import rss_feed, rss_item
from tests.conftest import SettingsFactory

WAIT = 30.0


class Closable:
    def __init__(self, name: str) -> None:
        self.name, self.closed = name, 0

    def close(self) -> None:
        self.closed += 1


def test_with_no_poll_running_a_retired_resource_closes_at_once() -> None:
    old = Closable("old client")
    generations = Generations("first")
    generations.replace("second", [old.close])
    assert old.closed == 1 and generations.pending == 0
    assert generations.current == "second"


def test_a_poll_that_began_before_the_reload_keeps_its_resources_until_it_ends() -> None:
    old = Closable("old client")
    generations = Generations("first")
    with generations.use() as deps:
        assert deps == "first"
        generations.replace("second", [old.close])
        with generations.use() as newer:  # a poll that starts now holds nothing old
            assert newer == "second"
        assert old.closed == 0 and generations.pending == 1
    assert old.closed == 1 and generations.pending == 0


def test_resources_of_two_reloads_wait_for_the_polls_of_their_own_generation() -> None:
    first, second = Closable("first client"), Closable("second client")
    generations = Generations(0)
    oldest = generations.use()
    oldest.__enter__()
    generations.replace(1, [first.close])
    middle = generations.use()
    middle.__enter__()
    generations.replace(2, [second.close])
    middle.__exit__(None, None, None)
    assert (first.closed, second.closed) == (0, 0)  # the oldest poll may use either
    oldest.__exit__(None, None, None)
    assert (first.closed, second.closed) == (1, 1)


def test_a_closer_that_fails_is_logged_and_the_others_still_close(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise OSError("socket already gone")

    good = Closable("pool")
    generations = Generations("first")
    caplog.set_level(logging.WARNING, logger="monitor")
    generations.replace("second", [broken, good.close])
    assert good.closed == 1
    assert any("socket already gone" in r.getMessage() for r in caplog.records)


def test_closing_the_app_closes_what_polls_still_hold() -> None:
    old = Closable("old client")
    generations = Generations("first")
    with generations.use():
        generations.replace("second", [old.close])
        generations.close()
        assert old.closed == 1
    assert old.closed == 1  # and not twice when the poll ends


class Reloads(RuleBasedStateMachine):
    """Polls start and end in any order around any number of reloads: every retired
    resource is closed exactly once, never while a poll of its generation (or an older
    one) runs, and as soon as none does."""

    def __init__(self) -> None:
        super().__init__()
        self.generations: Generations[int] = Generations(0)
        self.current = 0
        self.running: list[tuple[Any, int]] = []
        self.retired: list[tuple[Closable, int]] = []

    @rule()
    def start_poll(self) -> None:
        block = self.generations.use()
        assert block.__enter__() == self.current
        self.running.append((block, self.current))

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data())
    def end_poll(self, data: st.DataObject) -> None:
        block, _ = self.running.pop(data.draw(st.integers(0, len(self.running) - 1)))
        block.__exit__(None, None, None)

    @rule(count=st.integers(0, 2))
    def reload(self, count: int) -> None:
        made = [Closable(f"g{self.current}-{i}") for i in range(count)]
        self.retired += [(c, self.current) for c in made]
        self.current += 1
        self.generations.replace(self.current, [c.close for c in made])

    @invariant()
    def closed_exactly_when_no_older_poll_runs(self) -> None:
        oldest = min((g for _, g in self.running), default=self.current)
        for resource, generation in self.retired:
            assert resource.closed == (1 if generation < oldest else 0), (resource.name, oldest)
        assert self.generations.pending == sum(1 for _, g in self.retired if g >= oldest)

    def teardown(self) -> None:
        for block, _ in self.running:
            block.__exit__(None, None, None)
        assert all(resource.closed == 1 for resource, _ in self.retired)


TestReloads = Reloads.TestCase
TestReloads.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


def test_a_reload_closes_the_old_http_client_when_the_poll_using_it_ends(
    httpserver: HTTPServer, settings_factory: SettingsFactory
) -> None:
    """A real App: a poll is inside its fetch when a reload changes ``fetch`` (a new HTTP
    client); the old client stays open for that poll and is closed when it ends."""
    inside, release = threading.Event(), threading.Event()

    def slow_feed(_request: Request) -> Response:
        inside.set()
        release.wait(WAIT)
        item = rss_item("Swap", "https://news.example/1", datetime.now(UTC), "Prisoner exchange")
        return Response(rss_feed("News", "https://news.example/", [item]), content_type="application/rss+xml")

    httpserver.expect_request("/feed.xml").respond_with_handler(slow_feed)
    feeds = [{"name": "News", "url": httpserver.url_for("/feed.xml")}]
    first = settings_factory(feeds=feeds)
    second = settings_factory(feeds=feeds, fetch={"user_agent": "monitor-reloaded/1"})
    with App.from_settings(first) as app:
        old = app.fetcher
        results: list[Any] = []
        poll = threading.Thread(target=lambda: results.append(app.run_once()))
        poll.start()
        assert inside.wait(WAIT)
        app.reload(second)
        assert app.fetcher is not old and app.retired_pending == 1
        assert not old.closed  # the poll in flight still reads through it
        release.set()
        poll.join(WAIT)
        assert not poll.is_alive()
        [report] = results
        assert [o.status for o in report.outcomes] == ["ok"]
        assert old.closed and app.retired_pending == 0
        app.reload(settings_factory(feeds=feeds, fetch={"user_agent": "monitor-again/1"}))
        assert app.retired_pending == 0  # nothing in flight: the second old client closed at once
