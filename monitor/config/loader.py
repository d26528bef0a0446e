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
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from monitor.config.document import Document, Loc, read_document
from monitor.config.schema import ChannelSpec, Settings
from monitor.errors import ConfigError, ConfigProblem

UrlCheck = Callable[[str], str | None]
"""Returns None when Apprise accepts the URL, else why not."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_DATABASE = "MONITOR_DATABASE_URL"


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
    try:
        settings = Settings.model_validate(doc.data)
    except ValidationError as e:
        raise ConfigError([_describe(doc, err) for err in e.errors()]) from None
    problems = list(_cross_references(doc, settings))
    channels, url_problems = _resolve_channels(doc, settings, env, check_url, require_env)
    problems += url_problems
    if problems:
        raise ConfigError(problems)
    return settings.model_copy(
        update={
            "channels": channels,
            "database": _database_url(settings.database, path, env),
            "source": path.resolve(),
        }
    )


def _describe(doc: Document, err: ErrorDetails) -> ConfigProblem:
    """Turn one pydantic error into a message about the user's key."""
    loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "config")
    kind = err["type"]
    if kind == "extra_forbidden":
        message = f"unknown key '{key}'" + _suggest(key, loc[:-1])
    elif kind == "missing":
        message = f"missing required key '{key}'"
    else:
        text = err["msg"].removeprefix("Value error, ")
        shown = _shown_input(err.get("input"))
        message = f"{key}: {text}" + (f" (got {shown})" if shown and kind != "value_error" else "")
    return doc.problem(loc, message)


def _shown_input(value: object) -> str:
    if isinstance(value, str | int | float | bool):
        return repr(value)
    return ""


def _suggest(key: str, parent: Loc) -> str:
    """`` (did you mean 'interval'?)`` when a known key of that mapping is close."""
    model: type[BaseModel] | None = Settings
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
        if part == "channels" and model is None:
            model = ChannelSpec
    if model is None:
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
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
        if not rule.any and not rule.all:
            yield doc.problem(
                ("rules", i, "name"),
                f"rule '{rule.name}' is empty: give it 'any' or 'all' phrases",
            )
        for j, channel in enumerate(rule.notify):
            if channel not in settings.channels:
                known = ", ".join(sorted(settings.channels)) or "none defined"
                yield doc.problem(
                    ("rules", i, "notify", j),
                    f"rule '{rule.name}' notifies unknown channel '{channel}' (channels: {known})",
                )


def _duplicates(
    doc: Document, section: str, values: list[str], what: str, key: str = "name"
) -> Iterator[ConfigProblem]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield doc.problem((section, i, key), f"duplicate {what} '{value}'")
        seen.add(value)


def _resolve_channels(
    doc: Document,
    settings: Settings,
    env: Mapping[str, str],
    check_url: UrlCheck | None,
    require_env: bool,
) -> tuple[dict[str, ChannelSpec], list[ConfigProblem]]:
    """Substitute ``${VAR}`` in channel URLs and let Apprise judge each one."""
    problems: list[ConfigProblem] = []
    resolved: dict[str, ChannelSpec] = {}
    for name, spec in settings.channels.items():
        urls = []
        for i, raw in enumerate(spec.urls):
            loc = _url_loc(doc, name, i)
            url, missing = _substitute(raw, env)
            if missing and not require_env:
                urls.append(raw)
                continue
            if missing:
                problems.append(
                    doc.problem(loc, f"channel '{name}': environment variable {missing} is not set")
                )
                continue
            reason = check_url(url) if check_url else None
            if reason:
                problems.append(doc.problem(loc, f"channel '{name}': {reason}"))
            urls.append(url)
        resolved[name] = spec.model_copy(update={"urls": tuple(urls)})
    return resolved, problems


def _url_loc(doc: Document, channel: str, index: int) -> Loc:
    """Where URL number ``index`` of a channel is written, whichever form was used."""
    channels = doc.data.get("channels") if isinstance(doc.data, dict) else None
    raw = channels.get(channel) if isinstance(channels, dict) else None
    if isinstance(raw, list):
        return ("channels", channel, index)
    if isinstance(raw, dict):
        return ("channels", channel, "urls", index)
    return ("channels", channel)


def _substitute(text: str, env: Mapping[str, str]) -> tuple[str, str | None]:
    """Replace ``${VAR}`` from the environment (or the file named by ``VAR_FILE``)."""
    for name in _ENV_REF.findall(text):
        if name not in env and f"{name}_FILE" not in env:
            return text, name

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in env:
            return env[name]
        return Path(env[f"{name}_FILE"]).read_text(encoding="utf-8").strip()

    return _ENV_REF.sub(value, text), None


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
