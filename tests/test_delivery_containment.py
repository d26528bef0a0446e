"""One message that cannot be rendered or sent fails alone: it is retried, then buried as a
dead letter with its reason (secrets masked); the rest of the batch and the other channels
go on; no row stays claimed; the bug's traceback is logged once; metrics count it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from apprise.manager_plugins import NotificationManager
from apprise.plugins.custom_json import NotifyJSON

from monitor.app import App
from monitor.errors import NotifyError
from monitor.models import Alert, Snippet
from monitor.notify import AppriseNotifier
from tests.conftest import Clock, SettingsFactory
from tests.delivery import GateNotifier, queue, rows

SECRET = "s3cretPa55"


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


BUGS = [
    (OverflowError("date value out of range"), "deliver: OverflowError: date value out of range"),
    (RecursionError("maximum recursion depth exceeded"), "deliver: RecursionError: maximum recursion"),
    (KeyError("title"), "deliver: KeyError: 'title'"),
    (
        UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed"),
        "deliver: UnicodeEncodeError: 'utf-8' codec can't encode character '\\udc80'",
    ),
    (ZeroDivisionError("division by zero"), "deliver: ZeroDivisionError: division by zero"),
    (ValueError(f"token {SECRET} refused\x00\nBcc: x"), "deliver: ValueError: token *** refused Bcc: x"),
    (ValueError("x" * 100_000), "deliver: ValueError: xxx"),
    (_Unprintable(), "deliver: _Unprintable: (_Unprintable with a message that cannot be shown)"),
    (NotifyError("notify: hook: refused"), "notify: hook: refused"),
]


class OddNotifier(GateNotifier):
    """Our seam: the alert titled BAD raises ``error`` on channel ``hook`` only."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def send(self, alert: Alert) -> None:
        if alert.title == "BAD" and alert.channel == "hook":
            raise self.error
        super().send(alert)


def _settings(settings_factory: SettingsFactory, **channels: Any) -> Any:
    return settings_factory(
        channels=channels
        or {"hook": f"json://monitor:{SECRET}@127.0.0.1:9/x", "other": "json://127.0.0.1:9/y"},
        delivery={"backoff": ["1m", "5m"]},
    )


def _claimed(app: App) -> int:
    url = app.store.engine.url.render_as_string(hide_password=False)
    sql = "SELECT count(*) FROM deliveries WHERE claim_token IS NOT NULL OR claimed_until IS NOT NULL"
    return int(rows(url, sql)[0][0])


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "monitor.deliver" and r.exc_info]


@pytest.mark.parametrize(
    ("error", "reason"), BUGS, ids=[type(e).__name__ + f"-{i}" for i, (e, _) in enumerate(BUGS)]
)
def test_an_exception_from_one_message_fails_that_message_only(
    settings_factory: SettingsFactory,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    reason: str,
) -> None:
    seam = OddNotifier(error)
    with App.from_settings(_settings(settings_factory), clock=clock, notifier=seam, strict=True) as app:
        queue(app.store, ["first", "BAD", "last"], ["hook", "other"])
        report = app.courier.deliver()
        assert sorted((a.channel, a.title) for a in seam.sent) == [
            ("hook", "first"),
            ("hook", "last"),
            ("other", "BAD"),
            ("other", "first"),
            ("other", "last"),
        ]
        [failed] = [o for o in report.outcomes if o.status != "sent"]
        assert (failed.status, failed.title) == ("retry", "BAD")
        assert failed.error is not None and failed.error.startswith(reason)
        assert SECRET not in failed.error and len(failed.error) <= 1000
        assert _claimed(app) == 0

        for _ in range(2):  # every retry fails the same way, then it is a dead letter
            clock.advance(timedelta(minutes=10))
            app.courier.deliver()
        statuses = {s.channel: s for s in app.store.channel_statuses()}
        metrics = app.metrics.render().decode()
    assert (statuses["hook"].sent, statuses["hook"].dead, statuses["hook"].pending) == (2, 1, 0)
    assert statuses["hook"].last_error is not None and statuses["hook"].last_error.startswith(reason)
    assert statuses["other"].sent == 3
    kind = type(error).__name__
    assert f'monitor_delivery_failures_total{{channel="hook",error="{kind}"}} 3.0' in metrics
    assert 'monitor_delivery_attempts_total{channel="hook",result="dead"} 1.0' in metrics
    expected = 0 if isinstance(error, NotifyError) else 1
    assert len(_tracebacks(caplog)) == expected, "a bug's traceback is shown once, not at every retry"


def test_a_digest_that_cannot_be_rendered_fails_its_alerts_not_the_pass(
    settings_factory: SettingsFactory, clock: Clock
) -> None:
    seam = GateNotifier()
    seam.failing_batches = OverflowError("date value out of range")
    settings = _settings(
        settings_factory,
        brief={"urls": ["json://127.0.0.1:9/b"], "digest": "0 8 * * *"},
        hook="json://127.0.0.1:9/x",
    )
    with App.from_settings(settings, clock=clock, notifier=seam, strict=True) as app:
        queue(app.store, ["one", "two"], ["brief"], hold={"brief": clock.now})
        queue(app.store, ["three"], ["hook"], when=clock.now + timedelta(seconds=1))
        clock.advance(timedelta(seconds=1))
        report = app.courier.deliver()
        assert sorted((o.channel, o.status) for o in report.outcomes) == [
            ("brief", "retry"),
            ("brief", "retry"),
            ("hook", "sent"),
        ]
        assert _claimed(app) == 0
        seam.failing_batches = None
        clock.advance(timedelta(minutes=2))
        assert app.courier.deliver().sent == 2
    [(_, alerts, reason)] = seam.batches
    assert (sorted(a.title for a in alerts), reason) == (["one", "two"], "digest")


class Brittle(NotifyJSON):  # type: ignore[no-untyped-call]
    """A real Apprise plugin (JSON webhooks) with a bug: it raises on titles with BOOM."""

    service_name = "Brittle JSON (test)"
    protocol = "brittle"
    secure_protocol = "brittles"

    def send(self, body: Any, title: Any = "", *args: Any, **kwargs: Any) -> Any:
        if "BOOM" in title:
            raise RuntimeError("plugin bug: cannot send BOOM")
        return super().send(body, title, *args, **kwargs)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def brittle() -> Iterator[None]:
    plugins: Any = NotificationManager()  # type: ignore[no-untyped-call]
    plugins.add(Brittle, schemas="brittle")
    yield
    plugins.remove("brittle")


def _titles(posts: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(p["title"] for p in posts)


def test_a_plugin_that_raises_fails_only_its_own_target_through_real_apprise(
    brittle: None,
    settings_factory: SettingsFactory,
    json_sink_factory: Any,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good, flaky = json_sink_factory(), json_sink_factory()
    both = [good.url("/a"), f"brittle://127.0.0.1:{flaky.port}/b"]
    settings = _settings(settings_factory, both=both, solo=good.url("/c"))
    with App.from_settings(settings, clock=clock, strict=True) as app:
        assert isinstance(app.notifier, AppriseNotifier)
        queue(app.store, ["calm", "BOOM"], ["both", "solo"])
        report = app.courier.deliver()
        [failed] = [o for o in report.outcomes if o.status != "sent"]
        assert (failed.channel, failed.title, failed.status, failed.error_type) == (
            "both",
            "BOOM",
            "retry",
            "RuntimeError",
        )
        assert failed.error is not None and "RuntimeError: plugin bug: cannot send BOOM" in failed.error
        for _ in range(2):
            clock.advance(timedelta(minutes=10))
            app.courier.deliver()
        statuses = {s.channel: s for s in app.store.channel_statuses()}
    good.inbox.wait_for(4)
    flaky.inbox.wait_for(1)
    assert _titles(good.posts) == ["[ATACMS] BOOM", "[ATACMS] BOOM", "[ATACMS] calm", "[ATACMS] calm"]
    assert _titles(flaky.posts) == ["[ATACMS] calm"], "the retries went only to the URL that failed"
    assert (statuses["both"].sent, statuses["both"].dead, statuses["solo"].sent) == (1, 1, 2)
    assert len(_tracebacks(caplog)) == 1


def test_apprise_notifier_turns_a_rendering_failure_into_that_targets_error(
    json_sink_factory: Any, settings_factory: SettingsFactory
) -> None:
    """The targets that already have the message stay recorded; the cause is kept for the traceback."""
    first, second = json_sink_factory(), json_sink_factory()
    notifier = AppriseNotifier(_settings(settings_factory, hook=[first.url(), second.url()]))
    broken = Alert(
        delivery_id=1,
        channel="hook",
        feed="News",
        title="t",
        link=None,
        published=None,  # type: ignore[arg-type]  # what a renderer bug looks like from here
        rules=("r",),
        snippet=Snippet(text="s"),
        done_targets=frozenset({0}),
    )
    with pytest.raises(
        NotifyError, match="notify: hook: cannot render the message: AttributeError"
    ) as failed:
        notifier.send(broken)
    assert failed.value.delivered == frozenset({0})
    assert isinstance(failed.value.__cause__, AttributeError)
    assert first.posts == [] and second.posts == []
