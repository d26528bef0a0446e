"""The about job: judge by meaning the articles that polls queued, off the polls' path.

The model reads about 1 ms of one core per token: a cold start that leaves hundreds of
articles open for ``about`` rules would hold every poll (and its feed's lease) for
minutes. So a poll stores its articles with a queue row for each one an ``about`` rule
may still match (``Matcher.screen``), and this job drains the queue in batches (ADR
0020): claim (an owned lease, so several daemons share the work and a crash leaves
nothing claimed for long), screen again with the current rules, judge in one model
batch, store the hits with their stories and deliveries in one transaction, send.

Containment: an article the model fails on is given back with its reason and tried
again after a backoff, then ``gave_up`` (``monitor status`` shows it); the model failing
to load gives the whole batch back the same way; the database going away leaves the
claim to expire. Word rules never wait for any of it: they alerted in the poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from monitor.errors import MonitorError, StorageError
from monitor.faults import describe
from monitor.folding import story_plan
from monitor.models import Match
from monitor.pipeline import PollDeps
from monitor.store.about_queue import AboutClaim, Queued
from monitor.store.stories import StoryPlan

if TYPE_CHECKING:
    from monitor.meaning import Candidate

log = logging.getLogger(__name__)
BATCH = 32
"""Articles per claim: one model batch, about 5 s of one core for 32 leads."""
LEASE = timedelta(minutes=10)
"""A claim's lease: far longer than a batch takes, short enough that a crash's rows return soon."""


@dataclass(frozen=True, slots=True)
class AboutReport:
    """What the about job did: articles judged, matched, deliveries queued and sent,
    articles given back with a reason (``failed``) and articles given up for good."""

    judged: int = 0
    matched: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    hits: tuple[tuple[str, str], ...] = ()  # (feed, rule) of every match

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule of every match, in order."""
        return tuple(rule for _, rule in self.hits)

    def __add__(self, other: AboutReport) -> AboutReport:
        return AboutReport(
            self.judged + other.judged,
            self.matched + other.matched,
            self.queued + other.queued,
            self.sent + other.sent,
            self.failed + other.failed,
            self.gave_up + other.gave_up,
            self.hits + other.hits,
        )


def drain(
    current: Callable[[], AbstractContextManager[PollDeps]],
    owner: str,
    *,
    stop: Callable[[], bool] = lambda: False,
    budget: float | None = None,
    batch: int = BATCH,
) -> AboutReport:
    """Judge batches until the queue has nothing due, ``stop()`` says so, or ``budget``
    seconds have passed (the next tick goes on). Each batch is claimed, screened and
    judged with the dependencies ``current()`` gives then (the app's generation in use):
    a reload during a long drain reaches the next batch, so no batch alerts for a rule
    the reload removed, nor drops an article only a rule it added is open for."""
    started = time.monotonic()
    total = AboutReport()
    while not stop():
        with current() as deps:
            report, claimed = judge_batch(deps, owner, batch)
        total += report
        if not claimed or (budget is not None and time.monotonic() - started >= budget):
            break
    return total


def judge_batch(deps: PollDeps, owner: str, batch: int = BATCH) -> tuple[AboutReport, int]:
    """Claim one batch, judge it, settle every row of it, send its alerts; (report, claimed)."""
    store = deps.store
    claim = store.claim_about(deps.clock(), LEASE, owner, batch)
    if not claim.items:
        return AboutReport(), 0
    if deps.meaning is None:  # queued under a configuration that had about rules
        store.drop_about(claim.token, [i.article_id for i in claim.items])
        return AboutReport(), len(claim.items)
    try:
        matches, errors, vectors = _judge(claim.items, deps)
    except StorageError:
        store.release_about(claim.token, [i.article_id for i in claim.items])
        raise
    now = deps.clock()
    plans = _plans(claim, matches, deps)
    done = [i.article_id for i in claim.items if i.article_id not in errors]
    saved = store.save_about(
        claim,
        matches,
        deps.routes(),
        now,
        deps.settings.digest_holds(now),
        stories=plans,
        embeddings=vectors,
        settle=done,
    )
    gave_up = store.fail_about(claim.token, errors, now) if errors else []
    for article_id in gave_up:
        log.error('about article_id=%d status=gave_up error="%s"', article_id, errors[article_id])
    sent = 0
    if saved.delivery_ids:
        sent = deps.courier.deliver(ids=saved.delivery_ids).sent
    feed_of = {i.article_id: i.feed for i in claim.items}
    hits = tuple((feed_of[i], m.rule) for i, found in matches.items() for m in found)
    report = AboutReport(len(done), saved.matched, saved.queued, sent, len(errors), len(gave_up), hits)
    log.info(
        "about judged=%d matched=%d queued=%d failed=%d gave_up=%d",
        report.judged,
        report.matched,
        report.queued,
        report.failed,
        report.gave_up,
    )
    return report, len(claim.items)


def _judge(
    items: Sequence[Queued], deps: PollDeps
) -> tuple[dict[int, list[Match]], dict[int, str], dict[str, bytes]]:
    """Screen again with the current rules, then one model call per group of distinct
    keys (keys are unique per feed only): matches and errors by article id, vectors."""
    assert deps.meaning is not None
    groups, errors = _screen(items, deps)
    matches: dict[int, list[Match]] = {}
    vectors: dict[str, bytes] = {}
    for group in groups:
        try:
            judged = deps.meaning.judge([c for _, c in group.values()], deps.store.embeddings)
        except StorageError:
            raise
        except Exception as e:  # the model could not load or run: the batch waits, with why
            reason = _model_failure(e, len(group), deps)
            errors.update((item.article_id, reason) for item, _ in group.values())
            continue
        vectors.update(judged.vectors)
        for key, (item, _) in group.items():
            if key in judged.failed:
                errors[item.article_id] = judged.failed[key]
            elif key in judged.hits:
                matches[item.article_id] = [hit.match for hit in judged.hits[key]]
    return matches, errors, vectors


Group = dict[str, tuple[Queued, "Candidate"]]


def _screen(items: Sequence[Queued], deps: PollDeps) -> tuple[list[Group], dict[int, str]]:
    """The items some about rule is still open for, in groups of distinct entry keys;
    the items the matcher failed on (article id -> why)."""
    from monitor.meaning import Candidate  # loaded with the about rules

    groups: list[Group] = []
    errors: dict[int, str] = {}
    for item in items:
        try:
            screened = deps.matcher.screen(item.entry, item.feed)
        except Exception as e:  # one article's boundary
            if deps.strict:
                raise
            deps.faults.log(log, e, f"about screen article_id={item.article_id}")
            errors[item.article_id] = f"match: {describe(e)}"
            continue
        if not screened.gates:  # the rules changed since the poll: nothing left to judge
            continue
        group = next((g for g in groups if item.entry.key not in g), None)
        if group is None:
            group = {}
            groups.append(group)
        group[item.entry.key] = (item, Candidate(item.entry, tuple(screened.gates), screened.language))
    return groups, errors


def _model_failure(error: Exception, size: int, deps: PollDeps) -> str:
    """Why a batch could not be judged: a ModelError said plainly, a bug's traceback once."""
    if isinstance(error, MonitorError):
        reason = str(error)
    else:
        if deps.strict:
            raise error
        deps.faults.log(log, error, f"about batch={size}")
        reason = f"about: {describe(error)}"
    log.error('about entries=%d error="%s"', size, reason)
    return reason


def _plans(claim: AboutClaim, matches: Mapping[int, Sequence[Match]], deps: PollDeps) -> dict[int, StoryPlan]:
    """The story step per feed, for the articles that matched."""
    by_feed: dict[int, list[Queued]] = {}
    for item in claim.items:
        if matches.get(item.article_id):
            by_feed.setdefault(item.feed_id, []).append(item)
    plans = {}
    for feed_id, items in by_feed.items():
        spec = next((f for f in deps.settings.feeds if f.name == items[0].feed), None)
        keyed = {item.entry.key: matches[item.article_id] for item in items}
        language = spec.language if spec else None
        entries = [item.entry for item in items]
        plans[feed_id] = story_plan(deps.settings, entries, keyed, items[0].feed, deps.story_stats, language)
    return plans
