"""config.yaml -> Settings, or a ConfigError listing every mistake as ``path:line:col``.

Order: YAML syntax, then shape and types (pydantic), then cross-references (channel
names, duplicate names), then ``${VAR}`` substitution and Apprise URL checks. Each
problem points at the offending key so a person can jump straight to it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor import language
from monitor.config.document import Document, Loc, read_document
from monitor.config.schema import ChannelSpec, HttpSettings, LanguagePhrase, Settings, WatchRule
from monitor.errors import ConfigError, ConfigProblem
from monitor.files import TooLarge, read_at_most
from monitor.query import QueryError, parse_query
from monitor.redact import Redactor

UrlCheck = Callable[[str], str | None]
"""Returns None when Apprise accepts the URL, else why not."""

_LETTER = re.compile(r"\w")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_DATABASE = "MONITOR_DATABASE_URL"
_ENV_LISTEN = "MONITOR_HTTP_LISTEN"
_BACKENDS = ("sqlite", "postgresql")
_INTERNAL = ("source", "secrets")
"""Fields of Settings that the loader fills in; config.yaml may not set them."""
MAX_SECRET_BYTES = 64 * 1024  # a token, a password, a key file: never more


def load_settings(
    path: Path,
    environ: Mapping[str, str] | None = None,
    check_url: UrlCheck | None = None,
    *,
    require_env: bool = True,
) -> Settings:
    """Read, validate and resolve a config file; raise ConfigError on any mistake.

    ``require_env=False`` leaves unresolvable ``${VAR}`` references in place, for
    commands such as ``status`` that never send anything.
    """
    env = os.environ if environ is None else environ
    doc = read_document(path)
    data = dict(doc.data) if isinstance(doc.data, dict) else {}
    problems = [doc.problem([k], f"unknown key '{k}'") for k in _INTERNAL if k in data]
    for k in _INTERNAL:
        data.pop(k, None)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        errors = [err for err in e.errors() if not _echo_of_item_error(err)]
        raise ConfigError(_in_file_order(problems + [_describe(doc, err) for err in errors])) from None
    problems += _cross_references(doc, settings)
    channels, url_problems, secrets = _resolve_channels(doc, settings, env, check_url, require_env)
    problems += url_problems
    database = _database_url(settings.database, path, env)
    problems += _check_database(doc, database, from_env=bool(env.get(_ENV_DATABASE)))
    http, http_problem = _http_override(doc, settings, env)
    problems += http_problem
    if problems:
        redact = Redactor(secrets)
        raise ConfigError([replace(p, message=redact(p.message)) for p in _in_file_order(problems)])
    return settings.model_copy(
        update={
            "channels": channels,
            "database": database,
            "http": http,
            "source": path.resolve(),
            "secrets": frozenset(secrets),
        }
    )


def _in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """Top to bottom, as a person fixes them (the sort is stable for one position)."""
    return sorted(problems, key=lambda p: (p.line, p.column))


def _describe(doc: Document, err: ErrorDetails) -> ConfigProblem:
    """Turn one pydantic error into a message about the user's key."""
    loc, key = _where(doc, err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        message = f"unknown key '{key}'" + _suggest(key, loc[:-1])
    elif kind == "missing":
        message = f"missing required key '{key}'"
    elif kind == "value_error":
        message = f"{key}: " + err["msg"].removeprefix("Value error, ")
    elif len(loc) == 2 and loc[0] == "channels" and kind == "model_type":
        message = (
            f"channel '{key}' must be an Apprise URL, a list of URLs or a mapping "
            f"with 'urls'{_got(err.get('input'))}"
        )
    else:
        whose = f"{key}: each item" if loc and isinstance(loc[-1], int) else f"{key}:"
        got = "" if kind == "too_short" else _got(err.get("input"))
        message = f"{whose} {_plain_message(err)}{got}"
    return doc.problem(loc, message)


def _where(doc: Document, pydantic_loc: Loc) -> tuple[list[int | str], str]:
    """The user's path to a value (as written in the file) and the name to call it by.

    Drops pydantic's validator steps, and the ``urls`` key (and index) that a channel
    written as a bare URL or a list of URLs never had.
    """
    loc = [p for p in pydantic_loc if not (isinstance(p, str) and "[" in p)]
    if len(loc) >= 3 and loc[0] == "channels" and loc[2] == "urls":
        form = _channel_form(doc, str(loc[1]))
        if form != "mapping":
            key = f"channel '{loc[1]}'"
            return (loc[:2] + loc[3:] if form == "list" else loc[:2]), key
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "config")
    return loc, key


def _echo_of_item_error(err: ErrorDetails) -> bool:
    """Pydantic adds "too short" to a list whose items failed; only the items matter."""
    value, ctx = err.get("input"), err.get("ctx") or {}
    return err["type"] == "too_short" and isinstance(value, list) and len(value) >= ctx.get("min_length", 1)


_MUST = {
    "dict_type": "must be a mapping of keys",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "byte_size": "must be a size such as 10MB or 512KiB",
    "byte_size_unit": "must be a size such as 10MB or 512KiB",
}


def _plain_message(err: ErrorDetails) -> str:
    """Pydantic's wording for the common error types, said plainly; else pydantic's."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _MUST:
        return _MUST[kind]
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return "must list at least one item" if n == 1 else f"must list at least {n} items"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {n} characters long"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        return f"must be {words} {ctx.get(name)}"
    return str(err["msg"])


def _got(value: object) -> str:
    """`` (got 'lots')``: what the user wrote, when it helps to see it again."""
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if isinstance(value, str | int | float):
        return f" (got {value!r})"
    if isinstance(value, list):
        return " (got a list)"
    if isinstance(value, dict):
        return " (got a mapping)"
    if value is None:
        return " (got an empty value)"
    return f" (got {value})"  # a YAML date or time, for one


def _suggest(key: str, parent: Loc) -> str:
    """`` (did you mean 'interval'?)`` when a known key of that mapping is close."""
    model: type[BaseModel] | None = Settings
    named = False  # the next part is a name the user chose (a channel), not a key
    for part in parent:
        if isinstance(part, int) or named:
            named = False
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return ""
        model = _model_in(field.annotation)
        named = get_origin(field.annotation) is dict
    if model is None:
        return ""
    keys = [k for k in model.model_fields if not (model is Settings and k in _INTERNAL)]
    close = difflib.get_close_matches(key, keys, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model class inside ``Model``, ``tuple[Model, ...]`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _cross_references(doc: Document, settings: Settings) -> Iterator[ConfigProblem]:
    """Checks that span keys: names unique, rules non-empty, notify names known."""
    yield from _duplicates(doc, "feeds", [f.name for f in settings.feeds], "feed name")
    yield from _duplicates(doc, "feeds", [f.url for f in settings.feeds], "feed url", "url")
    yield from _duplicates(doc, "rules", [r.name for r in settings.rules], "rule name")
    for i, rule in enumerate(settings.rules):
        if not rule.any and not rule.all and rule.query is None and not rule.about:
            yield doc.problem(
                ("rules", i, "name"),
                f"rule '{rule.name}' is empty: give it 'any' or 'all' phrases, a 'query' or an 'about'",
            )
        if rule.min_similarity is not None and not rule.about:
            yield doc.problem(
                ("rules", i, "min_similarity"),
                f"rule '{rule.name}': min_similarity goes with 'about' (a description matched by meaning)",
            )
        if rule.query is not None:
            yield from _check_query(doc, i, rule)
        for j, channel in enumerate(rule.notify):
            if channel not in settings.channels:
                known = ", ".join(sorted(settings.channels)) or "none defined"
                yield doc.problem(
                    ("rules", i, "notify", j),
                    f"rule '{rule.name}' notifies unknown channel '{channel}' (channels: {known})",
                )
    yield from _languages_and_aliases(doc, settings)
    health = settings.health.channel
    if health is not None and health not in settings.channels:
        known = ", ".join(sorted(settings.channels)) or "none defined"
        yield doc.problem(("health", "channel"), f"unknown channel '{health}' (channels: {known})")


def _languages_and_aliases(doc: Document, settings: Settings) -> Iterator[ConfigProblem]:
    """Language codes (a feed's ``language:``, ``{uk: "..."}`` phrases) are ones monitor
    has word forms for; every alias has variants, none empty, and none leads back to
    its own name (``A: [B]`` with ``B: [A]``)."""
    codes = f"(languages: {language.listing()})"
    for i, feed in enumerate(settings.feeds):
        if feed.language is not None and not language.known(feed.language):
            yield doc.problem(("feeds", i, "language"), f"unknown language '{feed.language}' {codes}")
    for i, rule in enumerate(settings.rules):
        for key, phrases in (("any", rule.any), ("all", rule.all), ("exclude", rule.exclude)):
            for j, text in enumerate(phrases):
                code = text.language if isinstance(text, LanguagePhrase) else None
                if code is not None and not language.known(code):
                    where = ("rules", i, key, j, code) if len(phrases) > 1 else ("rules", i, key, code)
                    yield doc.problem(where, f"{key}: unknown language '{code}' {codes}")
        for text in rule.about:
            code = text.language if isinstance(text, LanguagePhrase) else None
            if code is not None and not language.known(code):
                yield doc.problem(("rules", i, "about", code), f"about: unknown language '{code}' {codes}")
    yield from _alias_problems(doc, settings.aliases)


def _alias_problems(doc: Document, aliases: Mapping[str, tuple[str, ...]]) -> Iterator[ConfigProblem]:
    for name, variants in aliases.items():
        if not variants:
            yield doc.problem(("aliases", name), f"alias '{name}' lists no variants")
        for j, variant in enumerate(variants):
            if not _LETTER.search(variant):
                yield doc.problem(("aliases", name, j), f"alias '{name}': variant {j + 1} is empty")
    reported: set[frozenset[str]] = set()
    for name, index, path in language.cycles(aliases):
        ring = frozenset(language.fold(p) for p in path)
        if ring not in reported:  # A -> B -> A once, where it is first written
            reported.add(ring)
            yield doc.problem(("aliases", name, index), f"alias cycle: {' -> '.join(path)}")


def _check_query(doc: Document, index: int, rule: WatchRule) -> Iterator[ConfigProblem]:
    """A malformed query, pointed at the very character inside it (as the file writes it)."""
    rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
    raw = rules[index].get("query") if isinstance(rules, list) and isinstance(rules[index], dict) else None
    written = raw if isinstance(raw, str) else rule.query or ""
    try:
        parse_query(written, exact=rule.exact, case_sensitive=rule.case_sensitive)
    except QueryError as e:
        yield doc.problem_inside(("rules", index, "query"), e.position, f"query: {e.message}")


def _duplicates(
    doc: Document, section: str, values: list[str], what: str, key: str = "name"
) -> Iterator[ConfigProblem]:
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in first:
            line, _ = doc.locate((section, first[value], key))
            yield doc.problem((section, i, key), f"duplicate {what} '{value}' (first given on line {line})")
        first.setdefault(value, i)


def _resolve_channels(
    doc: Document,
    settings: Settings,
    env: Mapping[str, str],
    check_url: UrlCheck | None,
    require_env: bool,
) -> tuple[dict[str, ChannelSpec], list[ConfigProblem], set[str]]:
    """Substitute ``${VAR}`` in channel URLs and let Apprise judge each one.

    Also returns the substituted values: they are secrets to keep out of all output.
    """
    problems: list[ConfigProblem] = []
    resolved: dict[str, ChannelSpec] = {}
    secrets: set[str] = set()
    for name, spec in settings.channels.items():
        urls = []
        for i, raw in enumerate(spec.urls):
            loc = _url_loc(doc, name, i)
            url, unresolved, values = _substitute(raw, env)
            secrets.update(values)
            if unresolved and not require_env:
                urls.append(raw)
                continue
            if unresolved:
                problems.append(doc.problem(loc, f"channel '{name}': {unresolved}"))
                continue
            reason = check_url(url) if check_url else None
            if reason:
                problems.append(doc.problem(loc, f"channel '{name}': {reason}"))
            urls.append(url)
        resolved[name] = spec.model_copy(update={"urls": tuple(urls)})
    return resolved, problems, secrets


def _url_loc(doc: Document, channel: str, index: int) -> Loc:
    """Where URL number ``index`` of a channel is written, whichever form was used."""
    form = _channel_form(doc, channel)
    if form == "list":
        return ("channels", channel, index)
    if form == "mapping":
        return ("channels", channel, "urls", index)
    return ("channels", channel)


def _channel_form(doc: Document, channel: str) -> str:
    """How a channel is written: ``url`` (one string), ``list`` of URLs, or ``mapping``."""
    channels = doc.data.get("channels") if isinstance(doc.data, dict) else None
    raw = channels.get(channel) if isinstance(channels, dict) else None
    if isinstance(raw, list):
        return "list"
    if isinstance(raw, dict):
        return "mapping"
    return "url"


def _substitute(text: str, env: Mapping[str, str]) -> tuple[str, str | None, list[str]]:
    """Replace ``${VAR}`` from the environment (or the file named by ``VAR_FILE``).

    Returns the resolved text, or the text unchanged and why it cannot be resolved,
    and every value substituted (from the environment or a file): secrets, all of them.
    """
    for name in _ENV_REF.findall(text):
        if name not in env and f"{name}_FILE" not in env:
            return text, f"environment variable {name} is not set", []
    failures: list[str] = []
    values: list[str] = []

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in env:
            values.append(env[name])
            return env[name]
        file = env[f"{name}_FILE"]
        try:
            values.append(read_at_most(Path(file), MAX_SECRET_BYTES).decode("utf-8").strip())
            return values[-1]
        except TooLarge as e:
            failures.append(f"cannot read {name}_FILE ({file}): {e}, more than any secret")
        except OSError as e:
            failures.append(f"cannot read {name}_FILE ({file}): {e.strerror}")
        except UnicodeDecodeError:
            failures.append(f"cannot read {name}_FILE ({file}): not UTF-8 text")
        return m.group(0)

    resolved = _ENV_REF.sub(value, text)
    return (text, failures[0], values) if failures else (resolved, None, values)


def _database_url(configured: str, config_path: Path, env: Mapping[str, str]) -> str:
    """``MONITOR_DATABASE_URL`` wins; a relative SQLite path is relative to the config file."""
    url = env.get(_ENV_DATABASE) or configured
    if env.get(_ENV_DATABASE):
        return url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        relative = url[len(prefix) :]
        return prefix + str(config_path.resolve().parent / relative)
    return url


def _check_database(doc: Document, url: str, *, from_env: bool) -> list[ConfigProblem]:
    """The database URL must be one SQLAlchemy parses, for a backend we support.

    The URL itself is never echoed: it may carry a password.
    """
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):  # ValueError: a port that is no number (``sqlite:// x``)
        reason = "not a database URL (write it like sqlite:///monitor.db or postgresql://host/db)"
    else:
        if backend in _BACKENDS:
            return []
        reason = f"unsupported database '{backend}' (use sqlite or postgresql)"
    where = f"{_ENV_DATABASE} (from the environment)" if from_env else "database"
    return [doc.problem(["database"], f"{where}: {reason}")]


def _http_override(
    doc: Document, settings: Settings, env: Mapping[str, str]
) -> tuple[HttpSettings, list[ConfigProblem]]:
    """``MONITOR_HTTP_LISTEN`` (a deployment value, e.g. in the container image) wins."""
    listen = env.get(_ENV_LISTEN, "").strip()
    if not listen:
        return settings.http, []
    try:
        return HttpSettings(listen=listen), []
    except ValidationError:
        message = f"{_ENV_LISTEN} (from the environment): must look like 127.0.0.1:8787, got {listen!r}"
        return settings.http, [doc.problem(("http",), message)]
