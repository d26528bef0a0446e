"""A claim's sends that each end before their own heartbeat's first renewal could
together outlast the claim's lease: another daemon then took the last alerts while this
one was still sending them, and the channel got them twice. The claim is now renewed
before a send that starts late in its lease. Real SQLite, a real second worker claiming
on the same file, the app's injected clock; the notifier is the test seam (a slow
channel: each send takes 35 s of that clock, under the 30 s timeout's 40 s heartbeat)."""

from __future__ import annotations

from datetime import timedelta

from pytest_httpserver import HTTPServer

from monitor.app import App
from monitor.config import Settings
from monitor.models import Alert
from monitor.samples import rss_feed, rss_item
from monitor.store import Store
from tests.conftest import Clock, RecordingNotifier, SettingsFactory

RULE = {"name": "ATACMS", "all": ["ATACMS"], "notify": ["hook"], "stories": "each"}
SEND_TAKES = timedelta(seconds=35)


class SlowChannel(RecordingNotifier):
    """Each send takes SEND_TAKES on the app's clock; during each, another worker on the
    same database tries to claim what is due, as a second daemon's pass would."""

    def __init__(self, clock: Clock, other: Store, takes: timedelta = SEND_TAKES) -> None:
        super().__init__()
        self.clock = clock
        self.other = other
        self.takes = takes
        self.taken_by_other: list[int] = []

    def send(self, alert: Alert) -> None:
        self.clock.advance(self.takes)
        claim = self.other.claim_due(self.clock(), timedelta(minutes=2), channel=alert.channel, limit=10)
        self.taken_by_other += claim.ids
        super().send(alert)


def _four_alerts(httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock) -> Settings:
    """Settings with one loopback feed of four articles the rule matches."""
    items = [
        rss_item(
            f"ATACMS strike {n}", f"https://news.example.org/{n}", clock.now - timedelta(minutes=5), "ATACMS."
        )
        for n in range(4)
    ]
    served = httpserver.expect_request("/desk.xml")
    served.respond_with_data(
        rss_feed("Desk", "https://news.example.org/", items), content_type="application/rss+xml"
    )
    feed = {"name": "Desk", "url": httpserver.url_for("/desk.xml")}
    return settings_factory(feeds=[feed], rules=[RULE])


def test_a_claim_of_slow_sends_stays_ours_until_its_last_send(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, db_url: str
) -> None:
    settings = _four_alerts(httpserver, settings_factory, clock)
    other = Store.open(db_url)
    notifier = SlowChannel(clock, other)
    try:
        with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
            assert app.courier.claim_size == 4  # the default timeout: one claim for all four
            report = app.run_once()
    finally:
        other.close()

    assert notifier.taken_by_other == []  # 4 x 35 s > the 120 s lease: it was renewed
    assert sorted(a.title for a in notifier.sent) == [f"ATACMS strike {n}" for n in range(4)]
    assert report.outcomes[0].sent == 4


def test_sends_left_in_a_claim_another_worker_took_are_not_sent(
    httpserver: HTTPServer, settings_factory: SettingsFactory, clock: Clock, db_url: str
) -> None:
    """A first send that outlasts the whole lease (no heartbeat ran on this clock; in a
    daemon it renews every 40 s while a send runs): the other worker takes the claim's
    alerts, the one being sent among them; this one finds its claim gone before its
    next send and leaves the rest to that worker (``lost``) instead of sending them too."""
    settings = _four_alerts(httpserver, settings_factory, clock)
    other = Store.open(db_url)
    notifier = SlowChannel(clock, other, takes=timedelta(minutes=3))
    try:
        with App.from_settings(settings, clock=clock, notifier=notifier, strict=True) as app:
            report = app.run_once()
    finally:
        other.close()

    assert [a.title for a in notifier.sent] == ["ATACMS strike 0"]  # only the send under way
    assert len(notifier.taken_by_other) == 4
    assert report.outcomes[0].sent == 0  # each reported lost: the other worker settles them
