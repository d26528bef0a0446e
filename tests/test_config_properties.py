"""Property tests: whatever config.yaml holds (YAML built from strategies, mutations of the
shipped config.yaml, random bytes), the loader gives Settings or a ConfigError whose
problems point into the file, never another exception; and ``healthcheck``'s reader gives
an address, None or a ConfigError. Each example has a generous deadline: the reader is
bounded, so an example that takes seconds is a bug."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from monitor.config import Settings, listen_address, load_settings
from monitor.errors import ConfigError
from monitor.notify import check_url

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")
DEADLINE = timedelta(seconds=10)
BASE = settings(deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(
    [
        "database", "timezone", "poll", "interval", "first_poll", "recent_window", "concurrency",
        "fetch", "max_bytes", "deadline", "http", "listen", "channels", "console", "urls", "digest",
        "max_per_hour", "template", "title", "body", "feeds", "name", "url", "full_text", "rules",
        "any", "all", "exclude", "query", "exact", "case_sensitive", "notify", "health", "channel",
        "retention", "articles", "delivery", "backoff", "shutdown_grace", "<<", "source",
    ]
) | st.text(max_size=10)  # fmt: skip
SCALARS = (
    st.sampled_from(
        [
            "10m", "1h30m", "0s", "-5m", "99999999999d", "recent", "all", "auto", "console://",
            "json://127.0.0.1:9/x", "mailto://", "${SMTP_PASS}", "sqlite:///monitor.db",
            "postgresql://x/y", "mysql://x", "127.0.0.1:8787", "Europe/Kyiv", "Mars/Olympus",
            "*/5 * * * *", "10MB", "https://feeds.example/rss.xml", "ATACMS", '"a" OR (b', "/(a+)+$/",
            "(" * 100 + "a" + ")" * 100, "{title} {nope}", "",
        ]
    )
    | st.text(max_size=20)
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.booleans()
    | st.none()
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
NAMES = st.sampled_from(["c", "d", "console", "BBC", "r"]) | st.text(max_size=6)
URLS = st.sampled_from(["json://127.0.0.1:9/x", "console://", "slack://${TOKEN}/#x", "nope://", "mailto://"])
TEXTS = SCALARS | URLS | st.lists(SCALARS, max_size=3)
QUERIES = st.lists(
    st.sampled_from(["ATACMS", "OR", "AND", "NOT", "(", ")", '"prisoner exchange"', "title:Kyiv", "/K.iv/",
                     "/(a)\\1/", "-opinion", "Zelensk*", "NEAR/3", "Київ"]),
    max_size=12,
).map(" ".join)  # fmt: skip
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "database": SCALARS,
        "timezone": SCALARS,
        "poll": st.dictionaries(
            st.sampled_from(["interval", "first_poll", "recent_window", "lease"]), SCALARS
        ),
        "fetch": st.dictionaries(
            st.sampled_from(["max_bytes", "deadline", "per_host", "user_agent"]), SCALARS
        ),
        "http": st.dictionaries(st.just("listen"), SCALARS | st.just("127.0.0.1:8787")),
        "channels": st.dictionaries(
            NAMES,
            URLS
            | st.lists(URLS, max_size=3)
            | st.fixed_dictionaries(
                {"urls": st.lists(URLS, max_size=2)},
                optional={
                    "timezone": SCALARS,
                    "digest": SCALARS,
                    "max_per_hour": SCALARS,
                    "template": st.dictionaries(st.sampled_from(["title", "body"]), SCALARS),
                },
            ),
            max_size=3,
        ),
        "feeds": st.lists(
            st.fixed_dictionaries({"name": NAMES, "url": SCALARS}, optional={"interval": SCALARS}), max_size=3
        ),
        "rules": st.lists(
            st.fixed_dictionaries(
                {"name": NAMES, "notify": st.lists(NAMES, max_size=2) | NAMES},
                optional={
                    "any": TEXTS,
                    "all": TEXTS,
                    "exclude": TEXTS,
                    "query": QUERIES | SCALARS,
                    "exact": SCALARS,
                    "case_sensitive": SCALARS,
                    "feeds": TEXTS,
                },
            ),
            max_size=3,
        ),
        "health": st.dictionaries(st.sampled_from(["channel", "failing_after"]), NAMES | SCALARS),
        "retention": st.dictionaries(st.sampled_from(["articles", "alerts"]), SCALARS),
    },
)
DOCUMENTS = SHAPED | st.dictionaries(KEYS, DATA, max_size=8)

SNIPPETS = st.sampled_from(
    [
        "&a ", "*a", "&b [*a, *a, *a]", "!!python/object:os.system ", "!foo ", "!!binary ", "!!int ",
        "!!set ", "!!str ", "[", "]", "{", "}", ": ", "- ", "\t", '"', "'", "#", "\n", "\n  ", "${X}",
        "<<: *a\n", "%YAML 1.1\n", "---\n", "...\n", '"\\ud800"', '"\\x00"', "9" * 5000, "2024-13-45",
        "? ", "|\n", ">-\n", "query: '" + "NOT " * 100 + "a'\n", "0x", ".nan", "~", "\ufeff", "\x85",
    ]
)  # fmt: skip


@st.composite
def mutations(draw: st.DrawFn) -> str:
    """The shipped config with a few cuts, copies and insertions."""
    text = SHIPPED
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 200)))
        kind = draw(st.sampled_from(["cut", "copy", "insert", "replace"]))
        if kind == "cut":
            text = text[:i] + text[j:]
        elif kind == "copy":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(SNIPPETS | st.text(max_size=5)) + text[i:]
        else:
            text = text[:i] + draw(st.characters()) + text[i + 1 :]
    return text


def _dumped(data: dict[str, object]) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties") / "config.yaml"


def _load(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        result = load_settings(path, {}, check_url)
    except ConfigError as e:
        assert e.problems
        assert all(p.path == str(path) and p.line >= 0 and p.column >= 0 for p in e.problems)
        event("config error")
    else:
        assert isinstance(result, Settings)
        event("settings")
    try:
        listen_address(path, {})
    except ConfigError as e:
        assert e.problems


@settings(BASE, max_examples=150)
@given(document=DOCUMENTS)
def test_any_yaml_document_is_settings_or_a_config_error(
    config_file: Path, document: dict[str, object]
) -> None:
    _load(config_file, _dumped(document).encode("utf-8"))


@settings(BASE, max_examples=200)
@given(text=mutations())
def test_any_edit_of_the_shipped_config_is_settings_or_a_config_error(config_file: Path, text: str) -> None:
    _load(config_file, text.encode("utf-8", "surrogatepass"))


@settings(BASE, max_examples=150)
@given(
    data=st.binary(max_size=2000) | st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_any_bytes_are_settings_or_a_config_error(config_file: Path, data: bytes) -> None:
    _load(config_file, data)
