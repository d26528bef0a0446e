"""``monitor rules test``: try rules on stored articles or on any text, before trusting them.

- ``rules test NAME`` or ``--all``: the config's rules over the articles in the
  database (``--since 30d``, ``--feed 'BBC*'``): each match with its highlighted
  snippet and which terms matched in which field, then per rule a count per day and
  the estimated alerts per day.
- ``rules test --query '...'``: a query not yet in the config (``--exact``,
  ``--case-sensitive`` as the rule keys would set them), over the database too.
- ``--text '...'`` or ``--file article.txt`` (``-`` for standard input; ``.html``
  files are reduced to their text): match that text instead of the database, as
  the article's content (``--title``, ``--summary``, ``--author``, ``--link`` and
  ``--feed-name`` fill the other fields); with ``--query`` no config is needed.
- ``--json``: one JSON object per line and match: ``rule``, ``article``
  (id, feed, title, link, published; null for ``--text``), ``field``, ``terms``,
  ``where`` (term -> fields) and ``snippet`` (text, highlights, marked); a match by
  meaning adds ``about`` (similarity, min_similarity, sentence, sentence_similarity),
  and each near miss is an object with ``near_miss`` instead of ``snippet``.
- Rules with ``about`` (by meaning) also print, over the database, the articles that
  came closest without reaching ``min_similarity`` and how many would match at other
  thresholds: set ``min_similarity`` from your own history. Vectors come from the
  cache the daemon fills, and what is embedded here is cached too.

A long run over the database shows a progress bar on standard error when it is a
terminal. Exit status: 0 (whether or not anything matched), 2 for a bad query, rule
name or config, 1 when the database fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO
from zoneinfo import ZoneInfo

from monitor.commands._common import EXIT_CONFIG, EXIT_OK, CommandExit, add_config_option
from monitor.commands.rule_stories import Grouping, folded_line, group
from monitor.config import Settings, WatchRule, load_settings, parse_duration
from monitor.decide import before
from monitor.files import TooLarge, read_at_most, read_stream_at_most
from monitor.match import Explanation, Matcher, Screened
from monitor.models import Entry, Snippet, StoredArticle
from monitor.query import QueryError, parse_query
from monitor.store import Store
from monitor.text import html_to_text

if TYPE_CHECKING:  # loaded only when a rule tried has ``about`` (numpy, the model)
    from monitor.meaning import AboutHit, Candidate, Meaning
    from monitor.semantic import AboutScore

NEAR_MISSES = 5
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rules test`` to the top-level sub-commands."""
    text = "try watch rules on stored articles or on any text"
    rules = commands.add_parser("rules", help=text, description=text)
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    help_text = "try rules (by name, --all, or a --query) on stored articles or on --text"
    test = actions.add_parser(
        "test", help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    test.set_defaults(handler=_test)
    add_config_option(test)
    which = test.add_mutually_exclusive_group(required=True)
    which.add_argument("rule", nargs="?", metavar="NAME", help="a rule of the config, by name")
    which.add_argument("--all", action="store_true", help="every rule of the config")
    which.add_argument("--query", metavar="QUERY", help="a query to try (as a rule's 'query:' would be)")
    test.add_argument("--exact", action="store_true", help="with --query: no English word forms")
    test.add_argument("--case-sensitive", action="store_true", help="with --query: letter case counts")
    source = test.add_mutually_exclusive_group()
    source.add_argument("--text", help="match this text (as an article's content) instead of the database")
    source.add_argument("--file", type=Path, metavar="FILE", help="match this file's text ('-': stdin)")
    test.add_argument("--title", default="", help="with --text/--file: the article's title")
    test.add_argument("--summary", default="", help="with --text/--file: the article's summary")
    test.add_argument("--author", help="with --text/--file: the article's author")
    test.add_argument("--link", help="with --text/--file: the article's link")
    test.add_argument("--feed-name", default="", help="with --text/--file: the feed's name")
    test.add_argument("--since", type=_since, metavar="AGE", help="only articles this recent, e.g. 30d")
    test.add_argument("--feed", metavar="GLOB", help="only articles of feeds whose name matches, e.g. 'BBC*'")
    test.add_argument("--json", action="store_true", help="one JSON object per match")


def _since(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@dataclass
class _Report:
    """What a run found: matches in order, and counts per rule and day."""

    zone: ZoneInfo
    found: list[tuple[StoredArticle | None, Explanation]] = field(default_factory=list)
    articles: int = 0
    oldest: datetime | None = None
    per_day: dict[str, Counter[str]] = field(default_factory=dict)
    alerting: set[int] = field(default_factory=set)
    stories: Grouping | None = None  # which story each stored match reports on
    about: dict[tuple[int | None, str], AboutHit] = field(default_factory=dict)  # (article, rule)
    scored: dict[str, Scored] = field(default_factory=dict)  # about rule -> its scores

    def add_about(self, article: StoredArticle | None, hit: AboutHit) -> None:
        """A match by meaning, shown with its similarity and closest sentence."""
        self.about[(article.id if article else None, hit.match.rule)] = hit
        self.add(article, [Explanation(hit.match, ())], count=False)

    def add(self, article: StoredArticle | None, found: list[Explanation], *, count: bool = True) -> None:
        self.articles += count
        if article is not None:
            when = article.entry.published
            self.oldest = when if self.oldest is None or when < self.oldest else self.oldest
            day = when.astimezone(self.zone).date().isoformat()
            if found:
                self.alerting.add(article.id)
            for explained in found:
                self.per_day.setdefault(explained.match.rule, Counter())[day] += 1
        self.found += [(article, explained) for explained in found]


@dataclass
class Scored:
    """One ``about`` rule's scores over the run: how many reach each threshold, and the
    closest misses (bounded: the best ``NEAR_MISSES`` only)."""

    threshold: float
    count: int = 0
    at: Counter[float] = field(default_factory=Counter)
    misses: list[tuple[float, int, StoredArticle, Candidate, AboutScore]] = field(default_factory=list)
    sentences: dict[int, tuple[str, float]] = field(default_factory=dict)  # article id -> closest

    def add(self, article: StoredArticle, candidate: Candidate, score: AboutScore) -> None:
        self.count += 1
        for threshold in THRESHOLDS:
            self.at[threshold] += score.similarity >= threshold
        if not score.matched:
            self.misses.append((score.similarity, -article.id, article, candidate, score))
            self.misses.sort(key=lambda miss: miss[:2], reverse=True)
            del self.misses[NEAR_MISSES:]


def _test(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except CommandExit as e:
        print(f"monitor: {e}", file=sys.stderr)
        return e.code


def _run(args: argparse.Namespace) -> int:
    rules, settings = _rules(args)
    if args.text is not None or args.file is not None:
        if not args.feed_name:  # a rule's feed globs need a feed name to say yes to
            rules = [r.model_copy(update={"feeds": ()}) for r in rules]
        report = _Report(ZoneInfo("UTC"))
        entry, matcher = _text_entry(args), Matcher.for_settings(settings, rules)
        screened = matcher.screen(entry, args.feed_name)
        report.add(None, screened.explained)
        meaning = _meaning(settings, rules)
        if meaning is not None and screened.gates:
            from monitor.meaning import Candidate

            judged = meaning.judge([Candidate(entry, tuple(screened.gates), screened.language)])
            for hit in judged.hits.get(entry.key, []):
                report.add_about(None, hit)
        _print(report, args, window=None)
        return EXIT_OK
    assert settings is not None  # only --query with --text/--file goes without a config
    report = _scan(settings, Matcher.for_settings(settings, rules), args, _meaning(settings, rules))
    report.stories = group(report.found, settings.stories.window)
    window = args.since or (datetime.now(UTC) - report.oldest if report.oldest else None)
    _print(report, args, window=window, rules=[r.name for r in rules])
    return EXIT_OK


def _rules(args: argparse.Namespace) -> tuple[list[WatchRule], Settings | None]:
    """The rules to try, and the settings when the run needs them."""
    if args.query is None and (args.exact or args.case_sensitive):
        raise CommandExit(
            EXIT_CONFIG, "--exact and --case-sensitive go with --query (rules have their own keys)"
        )
    needs_config = args.query is None or (args.text is None and args.file is None)
    settings = load_settings(args.config, require_env=False) if needs_config else None
    if args.query is not None:
        try:
            parse_query(args.query, exact=args.exact, case_sensitive=args.case_sensitive)
        except QueryError as e:
            raise CommandExit(EXIT_CONFIG, _query_error(args.query, e)) from None
        rule = WatchRule(
            name=args.query,
            query=args.query,
            exact=args.exact,
            case_sensitive=args.case_sensitive,
            notify=("rules-test",),
        )
        return [rule], settings
    assert settings is not None
    if args.all:
        return list(settings.rules), settings
    chosen = [r for r in settings.rules if r.name == args.rule]
    if not chosen:
        known = ", ".join(r.name for r in settings.rules) or "none"
        raise CommandExit(EXIT_CONFIG, f"{args.config}: no rule named '{args.rule}' (rules: {known})")
    return chosen, settings


MAX_TEXT_BYTES = 10 * 1024 * 1024  # an article, or a saved page, is far smaller; /dev/zero is not


def _bounded_file(path: Path) -> str:
    """The file's text, read up to ``MAX_TEXT_BYTES`` (a device or a huge log took all memory)."""
    try:
        return _utf8(read_at_most(path, MAX_TEXT_BYTES), str(path))
    except TooLarge as e:
        raise CommandExit(EXIT_CONFIG, f"cannot read {path}: {e}") from None
    except OSError as e:
        raise CommandExit(EXIT_CONFIG, f"cannot read {path}: {e.strerror}") from None


def _bounded_stdin() -> str:
    """Standard input, read up to ``MAX_TEXT_BYTES`` as ``_bounded_file`` reads a file."""
    source = "standard input"
    stdin: TextIO = sys.stdin
    binary: BinaryIO | None = getattr(stdin, "buffer", None)  # None: a text stream (a test's StringIO)
    try:
        if binary is None:
            return read_stream_at_most(stdin, MAX_TEXT_BYTES, source)
        return _utf8(read_stream_at_most(binary, MAX_TEXT_BYTES, source), source)
    except TooLarge as e:
        raise CommandExit(EXIT_CONFIG, f"cannot read {source}: {e}") from None


def _utf8(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandExit(EXIT_CONFIG, f"cannot read {source}: not UTF-8 text") from None


def _query_error(query: str, e: QueryError) -> str:
    """The message, then the query with a caret under the character at fault."""
    line_start = query.rfind("\n", 0, e.position) + 1
    line_end = query.find("\n", e.position)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    row, column = query.count("\n", 0, e.position) + 1, e.position - line_start + 1
    return f"--query:{row}:{column}: {e.message}\n  {line}\n  {' ' * (column - 1)}^"


def _text_entry(args: argparse.Namespace) -> Entry:
    if args.file is None:
        text = args.text
    elif str(args.file) == "-":
        text = _bounded_stdin()
    else:
        text = _bounded_file(args.file)
        if args.file.suffix.lower() in (".html", ".htm"):
            text = html_to_text(text)
    return Entry(
        key="text",
        title=args.title,
        link=args.link,
        author=args.author,
        published=datetime.now(UTC),
        summary_html=args.summary,
        summary_text=args.summary,
        content_html=text,
        content_text=text,
    )


def _meaning(settings: Settings | None, rules: Sequence[WatchRule]) -> Meaning | None:
    """The ``about`` rules among those tried (the model loads on first use), or None."""
    if settings is None or not any(rule.about for rule in rules):
        return None
    from monitor.meaning import Meaning

    return Meaning.for_settings(settings, rules)


def _scan(
    settings: Settings, matcher: Matcher, args: argparse.Namespace, meaning: Meaning | None = None
) -> _Report:
    """Every stored article (within --since and --feed) through the matcher, and the
    ``about`` rules' open ones through the model, a batch at a time."""
    report = _Report(ZoneInfo(settings.timezone))
    if meaning is not None:
        thresholds = {r.name: r.min_similarity for r in settings.rules if r.about}
        report.scored = {name: Scored(_bar(thresholds.get(name))) for name in meaning.rules}
    store = Store.open(settings.database, upgrade=False)
    try:
        feeds = None
        if args.feed:
            glob = args.feed.lower()
            feeds = [f.name for f in store.feed_statuses() if fnmatchcase(f.name.lower(), glob)]
        since = before(datetime.now(UTC), args.since) if args.since else None
        total, batches = store.read_articles(since=since, feeds=feeds)
        with Progress.on(sys.stderr, total) as progress:
            for batch in batches:
                open_: list[tuple[StoredArticle, Candidate]] = []
                for article in batch:
                    screened = matcher.screen(article.entry, article.feed)
                    report.add(article, screened.explained)
                    if meaning is not None and screened.gates:
                        open_.append((article, _candidate(article, screened)))
                if meaning is not None and open_:
                    _judge(meaning, open_, store, report)
                progress.advance(len(batch))
            if meaning is not None:
                _closest(meaning, store, report)
    finally:
        store.close()
    return report


def _bar(min_similarity: float | None) -> float:
    from monitor.semantic import DEFAULT_MIN_SIMILARITY

    return DEFAULT_MIN_SIMILARITY if min_similarity is None else min_similarity


def _candidate(article: StoredArticle, screened: Screened) -> Candidate:
    from monitor.meaning import Candidate

    return Candidate(article.entry, tuple(screened.gates), screened.language)


def _judge(
    meaning: Meaning, open_: Sequence[tuple[StoredArticle, Candidate]], store: Store, report: _Report
) -> None:
    """One batch of open articles through the model (cached vectors first; new ones cached)."""
    judged = meaning.judge([candidate for _, candidate in open_], store.embeddings)
    store.save_embeddings(judged.vectors, datetime.now(UTC))
    for article, candidate in open_:
        for hit in judged.hits.get(article.entry.key, []):
            report.add_about(article, hit)
        for score in judged.scores.get(article.entry.key, []):
            report.scored[score.rule].add(article, candidate, score)


def _closest(meaning: Meaning, store: Store, report: _Report) -> None:
    """The closest sentence of each near miss shown (embedded once, then cached)."""
    for scored in report.scored.values():
        for _, _, article, candidate, score in scored.misses:
            sentence, similarity, vectors = meaning.closest(candidate, score, store.embeddings)
            store.save_embeddings(vectors, datetime.now(UTC))
            scored.sentences[article.id] = (sentence, similarity)


# -- output -----------------------------------------------------------------------


def _print(
    report: _Report, args: argparse.Namespace, *, window: timedelta | None, rules: Sequence[str] = ()
) -> None:
    out = sys.stdout
    if args.json:
        for article, explained in report.found:
            found = match_json(article, explained)
            hit = report.about.get((article.id if article else None, explained.match.rule))
            if hit is not None:
                found["about"] = _about_json(hit.score, hit.sentence, hit.sentence_similarity)
            out.write(json.dumps(found, ensure_ascii=False) + "\n")
        for rule, scored in report.scored.items():
            for _, _, article, _, score in scored.misses:
                sentence, similarity = scored.sentences.get(article.id, ("", score.similarity))
                miss = {"rule": rule, "article": _article_json(article)}
                miss["near_miss"] = _about_json(score, sentence, similarity)
                out.write(json.dumps(miss, ensure_ascii=False) + "\n")
        return
    for article, explained in report.found:
        hit = report.about.get((article.id if article else None, explained.match.rule))
        out.write(_match_text(article, explained, report.zone, report.stories, hit) + "\n\n")
    if args.text is not None or args.file is not None:
        if not report.found:
            out.write("No match.\n")
        return
    out.write(_summary(report, rules, window, args.since is not None))


def match_json(article: StoredArticle | None, explained: Explanation) -> dict[str, object]:
    """One match as ``--json`` writes it."""
    match = explained.match
    return {
        "rule": match.rule,
        "article": None if article is None else _article_json(article),
        "field": match.field,
        "terms": list(match.terms),
        "where": explained.where(),
        "snippet": {
            "text": match.snippet.text,
            "highlights": [list(h) for h in match.snippet.highlights],
            "marked": marked(match.snippet),
        },
    }


def _article_json(article: StoredArticle) -> dict[str, object]:
    return {
        "id": article.id,
        "feed": article.feed,
        "title": article.entry.title,
        "link": article.entry.link,
        "published": article.entry.published.isoformat(),
    }


def _about_json(score: AboutScore, sentence: str, similarity: float) -> dict[str, object]:
    return {
        "similarity": round(score.similarity, 4),
        "min_similarity": round(score.threshold, 4),
        "sentence": sentence,
        "sentence_similarity": round(similarity, 4),
    }


def marked(snippet: Snippet, before: str = "«", after: str = "»") -> str:
    """The snippet with each highlight between ``before`` and ``after``."""
    out, pos = [], 0
    for start, end in snippet.highlights:
        out += [snippet.text[pos:start], before, snippet.text[start:end], after]
        pos = end
    out.append(snippet.text[pos:])
    return "".join(out)


def _match_text(
    article: StoredArticle | None,
    explained: Explanation,
    zone: ZoneInfo,
    stories: Grouping | None = None,
    hit: AboutHit | None = None,
) -> str:
    match = explained.match
    where = ", ".join(f"{term} ({', '.join(fields)})" for term, fields in explained.where().items())
    if hit is not None:
        where = (
            f"by meaning, similarity {hit.score.similarity:.2f} (min_similarity {hit.score.threshold:.2f}), "
            f"closest sentence {hit.sentence_similarity:.2f} (marked)"
        )
    lines = []
    if article is not None:
        when = article.entry.published.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        story = (
            f"  [story {stories.story_of[article.id]}]" if stories and article.id in stories.story_of else ""
        )
        lines.append(f"{when}  {article.feed}  {article.entry.title}{story}")
    lines.append(f"  rule: {match.rule}  matched: {where or 'nothing to mark (NOT only)'}")
    lines.append(f"  {marked(match.snippet)}")
    if article is not None and article.entry.link:
        lines.append(f"  {article.entry.link}")
    return "\n".join(lines)


def _summary(report: _Report, rules: Sequence[str], window: timedelta | None, since: bool) -> str:
    """Per rule: matches, a count per day, estimated alerts per day."""
    if report.articles == 0:
        return "No stored articles" + (" in that window.\n" if since else ".\n")
    days = max(window.total_seconds() / 86_400, 1 / 24) if window else 1.0
    span = f"the last {_days(days)}" if since else f"{_days(days)} of stored articles"
    lines = []
    for rule in rules:
        counts = report.per_day.get(rule, Counter())
        total = sum(counts.values())
        lines.append(
            f"{rule}: {total} match{'es' if total != 1 else ''} in {report.articles} articles "
            f"over {span}: about {total / days:.1f} alerts/day"
        )
        if report.stories is not None and total:
            lines.append(folded_line(report.stories, rule, total, days))
        widest = max(counts.values(), default=0)
        for day in sorted(counts):
            bar = "█" * max(1, round(40 * counts[day] / widest))
            lines.append(f"  {day}  {counts[day]:>4}  {bar}")
        if rule in report.scored:
            lines += _calibration(report.scored[rule], report.zone)
    if len(rules) > 1:
        n = len(report.alerting)
        lines.append(f"Any rule: {n} of {report.articles} articles would alert: about {n / days:.1f}/day")
    return "\n".join(lines) + "\n"


def _calibration(scored: Scored, zone: ZoneInfo) -> list[str]:
    """An ``about`` rule's matches at other thresholds, and its closest misses."""
    if not scored.count:
        return ["  by meaning: no article passed the rule's feeds and words"]
    at = " · ".join(f"{t:.1f}: {scored.at[t]}" for t in THRESHOLDS)
    lines = [f"  by meaning: {scored.count} articles scored; matches at min_similarity {at}"]
    if not scored.misses:
        return [*lines, "  no near misses: every article scored reached the threshold"]
    lines.append(f"  closest below min_similarity {scored.threshold:.2f}:")
    for similarity, _, article, _, _ in scored.misses:
        when = article.entry.published.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        lines.append(f"    {similarity:.2f}  {when}  {article.feed}  {article.entry.title}")
        sentence, sentence_similarity = scored.sentences.get(article.id, ("", similarity))
        if sentence:
            lines.append(f"          closest sentence ({sentence_similarity:.2f}): {sentence}")
    return lines


def _days(days: float) -> str:
    return f"{days:.0f} days" if days >= 2 else f"{days * 24:.0f} hours"


class Progress:
    """A one-line progress bar on a terminal: ``[########------]  1,200/5,000 articles``."""

    def __init__(self, stream: TextIO, total: int, width: int = 30) -> None:
        self.stream = stream
        self.total = total
        self.width = width
        self.done = 0

    @classmethod
    def on(cls, stream: TextIO, total: int) -> Progress | _Silent:
        """A bar when ``stream`` is a terminal and there is something to count."""
        return cls(stream, total) if total and stream.isatty() else _Silent()

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.write("\n")
        self.stream.flush()

    def advance(self, n: int) -> None:
        """Count ``n`` more articles done."""
        self.done = min(self.total, self.done + n)
        self._draw()

    def _draw(self) -> None:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done:,}/{self.total:,} articles")
        self.stream.flush()


class _Silent:
    """No bar (not a terminal, or nothing to do)."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, n: int) -> None:
        """Nothing to show."""
