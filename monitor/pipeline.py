"""One poll of one feed: fetch -> parse -> which entries are new -> pages -> match ->
store -> deliver, as small steps around the pure decisions of ``decide``.

``poll_feed`` is the feed's job boundary. Whatever goes wrong while polling one feed
(fetch, parse, identity, a page, matching, the store) becomes that feed's recorded
error with its type; its lease ends at once, it backs off, ``monitor status`` and the
metrics show it, and the other feeds go on. A bug's traceback is logged once per
distinct fault (``faults``); tests run strict, where bugs propagate. One bad entry is
left out with a reason (the feed's last warning) and the rest of the feed is stored.

All network I/O of the poll happens before the single transaction that stores the
articles, matches and outbox rows; that transaction checks the poll still holds its
feed's lease, so a poll that outlived its lease never overwrites another poller's work.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from monitor.config import FeedSpec, Settings, format_duration
from monitor.decide import alertable, error_backoff, polite_interval, unchanged, within_retention
from monitor.deliver import Courier, DeliveryReport
from monitor.errors import FeedError, FetchError, GoneError, LeaseLost, StorageError
from monitor.faults import Faults, describe
from monitor.fetch import Fetcher
from monitor.folding import story_plan
from monitor.health import after_success, assess_lazily, typical_gap
from monitor.match import Matcher, Screened
from monitor.models import Entry, FeedState, Fetched, Match, NotModified, ParsedFeed, PollOutcome
from monitor.pages import Extractor, extract_here, with_pages
from monitor.parse import parse
from monitor.store import PollResult, Store
from monitor.stories import TermStats, WordfreqStats

if TYPE_CHECKING:  # imported only by configurations with about rules (numpy, the model)
    from monitor.meaning import Meaning

log = logging.getLogger(__name__)
WARNING_LIMIT = 500
_T = TypeVar("_T")


@dataclass(frozen=True)
class PollDeps:
    """Everything a poll needs, built once per configuration by the app."""

    settings: Settings
    fetcher: Fetcher
    store: Store
    matcher: Matcher
    courier: Courier
    clock: Callable[[], datetime]
    parser: Callable[[Fetched], ParsedFeed] = parse
    faults: Faults = field(default_factory=Faults)
    story_stats: TermStats = field(default_factory=WordfreqStats)
    strict: bool = False  # tests: a bug propagates instead of becoming the feed's error
    extractor: Extractor = extract_here
    meaning: Meaning | None = None  # the about rules, when the config has any

    def spec(self, url: str) -> FeedSpec | None:
        """The configured feed with this URL."""
        return next((f for f in self.settings.feeds if f.url == url), None)

    def routes(self) -> Mapping[str, Sequence[str]]:
        """Rule name -> channels to notify."""
        return {rule.name: rule.notify for rule in self.settings.rules}


@dataclass(frozen=True, slots=True)
class Poll:
    """One poll in progress: the feed, its config and when the poll started."""

    feed: FeedState
    spec: FeedSpec | None
    interval: timedelta
    now: datetime


def poll_feed(feed: FeedState, deps: PollDeps) -> PollOutcome:
    """Poll one feed end to end; a feed's own failure is recorded, never raised."""
    started = time.perf_counter()
    now = deps.clock()
    spec = deps.spec(feed.url)
    interval = deps.settings.feed_interval(spec) if spec else deps.settings.poll.interval
    poll = Poll(feed, spec, interval, now)
    try:
        outcome = _poll(poll, deps)
    except Exception as e:  # the feed's job boundary (module docstring)
        outcome = _failed(poll, deps, e)
    outcome = replace(outcome, duration_ms=(time.perf_counter() - started) * 1000)
    if outcome.status != "error":
        _log_success(outcome)
    _guarded(deps, f'health feed="{feed.name}"', lambda: check_health(feed, deps, now, outcome))
    return outcome


def _poll(poll: Poll, deps: PollDeps) -> PollOutcome:
    feed = poll.feed
    fetched, fetch_ms = _fetch(poll, deps)
    if isinstance(fetched, NotModified):
        if feed.etag is None and feed.last_modified is None:
            # Nothing was asked to be reused: taken as "unchanged", a first poll would end
            # as a success with nothing stored, and the next 200 alert every old entry.
            raise FetchError(feed.url, "fetch: 304 Not Modified to a request without validators")
        return _unchanged(poll, deps, fetched.max_age, fetch_ms)
    _note_move(poll, fetched, deps)
    body_hash = hashlib.sha256(fetched.body).hexdigest()
    if unchanged(feed, fetched, body_hash):
        return _unchanged(poll, deps, fetched.max_age, fetch_ms)
    parsed = deps.parser(replace(fetched, known=None if feed.first_poll else feed.items))
    if parsed.warning:
        log.debug('parse feed="%s" warning="%s"', feed.name, parsed.warning)
    new = _new_entries(poll, parsed, deps)
    new, candidates = _with_pages(poll, new, may_alert(new, feed, deps.settings, poll.now), deps)
    matches, left_out, open_ = match_entries(deps.matcher, candidates, feed.name, deps)
    about = [e.key for e, _ in open_] if deps.meaning is not None else []
    stored = [e for e in new if e.key not in left_out]
    dropped = [*parsed.dropped, *left_out.values()]
    result = PollResult(
        fetched.etag, fetched.last_modified, parsed.title, body_hash, _warning(dropped), parsed.items
    )
    if left_out:  # they are new again next time: fetch and parse the whole body again then
        result = replace(result, etag=None, last_modified=None, body_hash=None, items=None)
    next_poll = poll.now + polite_interval(
        poll.interval, _hint(fetched.max_age, parsed.ttl), deps.settings.poll
    )
    saved = deps.store.save_poll(
        feed.id,
        result,
        stored,
        matches,
        deps.routes(),
        poll.now,
        next_poll,
        deps.settings.digest_holds(poll.now),
        lease=feed.lease,
        stories=story_plan(deps.settings, stored, matches, feed.name, deps.story_stats, _language(poll)),
        about=about,
    )
    report = _deliver_now(deps, saved.delivery_ids, feed.name)
    return PollOutcome(
        feed=feed.name,
        status="ok",
        new=saved.new,
        matched=saved.matched,
        queued=saved.queued,
        sent=report.sent,
        failed=report.failed,
        rules=tuple(m.rule for found in matches.values() for m in found),
        fetch_ms=fetch_ms,
        dropped=len(dropped),
        skipped=parsed.skipped,
    )


def _language(poll: Poll) -> str | None:
    """The feed's declared language, if its config says one."""
    return poll.spec.language if poll.spec else None


def _fetch(poll: Poll, deps: PollDeps) -> tuple[Fetched | NotModified, float]:
    started = time.perf_counter()
    feed = poll.feed
    # A moved feed is fetched on its configured address's behalf (``fetch._addresses``):
    # the new host's publisher may answer "private" later, and must not gain the
    # intranet's trust by it.
    fetched = deps.fetcher.fetch(
        feed.address,
        etag=feed.etag,
        last_modified=feed.last_modified,
        now=poll.now,
        origin=feed.url,
        public=feed.public_seen,
    )
    if fetched.public and not feed.public_seen:  # remembered across restarts (ADR 0026)
        deps.store.record_public(feed.id, poll.now, lease=feed.lease)
    return fetched, (time.perf_counter() - started) * 1000


def _unchanged(poll: Poll, deps: PollDeps, max_age: float | None, fetch_ms: float) -> PollOutcome:
    """A 304 or the very body parsed last time: a success with nothing new."""
    next_poll = poll.now + polite_interval(poll.interval, max_age, deps.settings.poll)
    deps.store.record_unchanged(poll.feed.id, poll.now, next_poll, lease=poll.feed.lease)
    return PollOutcome(feed=poll.feed.name, status="not_modified", fetch_ms=fetch_ms)


def _note_move(poll: Poll, fetched: Fetched, deps: PollDeps) -> None:
    """Every redirect on the way was permanent: fetch from the new address from now on."""
    if fetched.moved_to and fetched.moved_to != poll.feed.address:
        deps.store.record_moved(poll.feed.id, fetched.moved_to, lease=poll.feed.lease)
        log.warning(
            'poll feed="%s" moved permanently to="%s" (update config.yaml)', poll.feed.name, fetched.moved_to
        )


def _new_entries(poll: Poll, parsed: ParsedFeed, deps: PollDeps) -> list[Entry]:
    """The entries not stored yet (by key, or by alias when a publisher rotates guids).

    A feed's first poll has nothing stored (articles are only written by a successful
    poll, which ends the first one), so it asks the store nothing: on a cold start that
    is one query per feed less."""
    if poll.feed.first_poll:
        return list(parsed.entries)
    seen = deps.store.seen(poll.feed.id, parsed.entries)
    return [e for e in parsed.entries if e.key not in seen]


def may_alert(new: Sequence[Entry], feed: FeedState, settings: Settings, now: datetime) -> list[Entry]:
    """The new entries that may alert: first-poll policy, then the alerts retention."""
    candidates = alertable(new, feed.first_poll, settings.poll, now)
    return within_retention(candidates, settings.retention.alerts, now)


def _with_pages(
    poll: Poll, new: list[Entry], candidates: list[Entry], deps: PollDeps
) -> tuple[list[Entry], list[Entry]]:
    """``new`` and ``candidates`` with the article text of the candidates (``full_text``)."""
    if not candidates or poll.spec is None or poll.spec.full_text == "never":
        return new, candidates
    pages = with_pages(candidates, poll.spec.full_text, deps, poll.now, poll.feed.url)
    # The pages took the poll's longest step: keep the lease (LeaseLost if it passed on).
    deps.store.renew_lease(poll.feed.id, poll.feed.lease, deps.clock() + deps.settings.poll.lease)
    enriched = {e.key: e for e in pages}
    return [enriched.get(e.key, e) for e in new], pages


def match_entries(
    matcher: Matcher, entries: Sequence[Entry], feed_name: str, deps: PollDeps
) -> tuple[dict[str, list[Match]], dict[str, str], list[tuple[Entry, Screened]]]:
    """Matches of these entries, the entries left out (key -> why), and the entries
    whose ``about`` rules are still open (``Matcher.screen``: the about job decides
    next, from the queue the poll writes; ``monitor.about_job``).

    An entry the matcher fails on is left out of this poll (it is new again next
    time) instead of taking the feed's other entries with it.
    """
    matches: dict[str, list[Match]] = {}
    left_out: dict[str, str] = {}
    open_: list[tuple[Entry, Screened]] = []
    for entry in entries:
        try:
            screened = matcher.screen(entry, feed_name)
        except Exception as e:  # one entry's boundary: the rest of the feed goes on
            if deps.strict:
                raise
            deps.faults.log(log, e, f'match feed="{feed_name}" entry="{entry.key[:80]}"')
            left_out[entry.key] = f"match: {describe(e)} (entry {entry.key[:80]})"
            continue
        if screened.explained:
            matches[entry.key] = [found.match for found in screened.explained]
        if screened.gates:
            open_.append((entry, screened))
    return matches, left_out, open_


def _deliver_now(deps: PollDeps, ids: Sequence[int], feed_name: str) -> DeliveryReport:
    """Send the poll's new alerts at once; whatever fails here waits in the outbox for
    the delivery tick (the alerts are stored already), so it is not the feed's failure."""
    if not ids:
        return DeliveryReport()
    report = _guarded(deps, f'deliver feed="{feed_name}"', lambda: deps.courier.deliver(ids=ids))
    return report or DeliveryReport()


def _failed(poll: Poll, deps: PollDeps, error: Exception) -> PollOutcome:
    """Record what went wrong on the feed, end its lease, back off; the outcome says it."""
    feed, kind = poll.feed, type(error).__name__
    outcome = PollOutcome(feed=feed.name, status="error", error=str(error), error_kind=kind)
    if isinstance(error, LeaseLost):
        log.warning('poll feed="%s" status=superseded error="%s"', feed.name, error)
        return outcome
    try:
        if isinstance(error, GoneError):
            deps.store.disable(feed.id, str(error), poll.now, lease=feed.lease)
            log.error(
                'poll feed="%s" status=disabled error="%s" (remove it from the config)', feed.name, error
            )
            return outcome
        return _record_failure(poll, deps, error, outcome)
    except StorageError as e:  # the database is down too: the lease expires by itself
        log.error('poll feed="%s" status=error error="%s" (not recorded: %s)', feed.name, error, e)
        return outcome


def _record_failure(poll: Poll, deps: PollDeps, error: Exception, outcome: PollOutcome) -> PollOutcome:
    feed = poll.feed
    if isinstance(error, FeedError | StorageError):
        message = str(error)
        retry_after = error.retry_after if isinstance(error, FeedError) else None
    else:  # a bug, met while polling this feed
        if deps.strict:
            raise error
        deps.faults.log(log, error, f'poll feed="{feed.name}" status=crash')
        message, retry_after = describe(error), None
    delay = error_backoff(poll.interval, feed.error_count + 1, deps.settings.poll.max_backoff, retry_after)
    failures = deps.store.record_failure(feed.id, message, poll.now, poll.now + delay, lease=feed.lease)
    log.warning(
        'poll feed="%s" status=error kind=%s failures=%d retry_in=%s error="%s"',
        feed.name,
        outcome.error_kind,
        failures,
        format_duration(delay),
        message,
    )
    return replace(outcome, error=message)


def _log_success(outcome: PollOutcome) -> None:
    log.info(
        'poll feed="%s" status=%s new=%d matched=%d sent=%d failed=%d dropped=%d ms=%.0f',
        outcome.feed,
        outcome.status,
        outcome.new,
        outcome.matched,
        outcome.sent,
        outcome.failed,
        outcome.dropped,
        outcome.duration_ms,
    )


def _guarded(deps: PollDeps, context: str, step: Callable[[], _T]) -> _T | None:
    """Run a step after the poll's results are stored: its failure is logged, not the feed's."""
    try:
        return step()
    except StorageError as e:
        log.error('%s status=error error="%s"', context, e)
    except Exception as e:  # a bug in a follow-up step: logged once, the poll's work stands
        if deps.strict:
            raise
        deps.faults.log(log, e, context)
    return None


def check_health(feed: FeedState, deps: PollDeps, now: datetime, outcome: PollOutcome) -> None:
    """After a poll: did the feed start failing, go silent, or recover? Tell once.

    After a success the feed's state is known without a read (``after_success``); a
    failure reads it (the store counted the failure)."""
    if outcome.status != "error":
        status = after_success(feed, now, new=outcome.new > 0)
    else:
        status = deps.store.feed_status(feed.id)

    def gap_of() -> timedelta | None:
        return typical_gap(deps.store.recent_published(feed.id))

    health, reason = assess_lazily(status, gap_of, now, deps.settings.health)
    if health == status.health:
        return
    channel = deps.settings.health.channel
    notice = None
    if channel is not None:
        if health == "ok":
            notice = (
                channel,
                f"{feed.name} has recovered",
                f"{feed.name} is healthy again (was {status.health}).",
            )
        else:
            notice = (channel, f"{feed.name} is {health}", f"{feed.name}: {reason}")
    deps.store.set_health(feed.id, health, notice, now)
    log.warning('health feed="%s" from=%s to=%s reason="%s"', feed.name, status.health, health, reason)


def _hint(max_age: float | None, ttl: float | None) -> float | None:
    """The longer of the server's ``max-age`` and the feed's ``<ttl>``."""
    hints = [h for h in (max_age, ttl) if h is not None]
    return max(hints) if hints else None


def _warning(dropped: Sequence[str]) -> str | None:
    """The feed's last warning: how many entries were left out and the first reason."""
    if not dropped:
        return None
    text = f"{len(dropped)} entr{'y' if len(dropped) == 1 else 'ies'} left out: {dropped[0]}"
    return text if len(text) <= WARNING_LIMIT else text[: WARNING_LIMIT - 1] + "…"
