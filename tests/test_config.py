"""config.yaml validation: every mistake is one ``config.yaml:LINE:COL: message`` line, exit 2.

The error table drives the real command line (``monitor check``) against files in
``tmp_path``; Apprise URLs are judged by the real Apprise. Line numbers in the table
are the positions of the arguments to ``_yaml`` (line 1 = first argument).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.cli import main
from monitor.config import format_duration, load_settings, parse_duration
from monitor.errors import ConfigError, ConfigProblem
from monitor.notify import check_url

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
WriteConfig = Callable[..., Path]
EXIT_CONFIG = 2


def _yaml(*lines: str) -> str:
    """One argument per line, so a case's expected LINE is the argument's position."""
    return "\n".join(lines) + "\n"


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """``monitor check -c PATH``: exit code, stdout, and the config problem lines on stderr
    with the directory stripped (so they read ``config.yaml:LINE:COL: message``)."""
    code = main(["check", "-c", str(path)])
    out, err = capsys.readouterr()
    prefix = f"{path.parent}{os.sep}"
    problems = [line.removeprefix(prefix) for line in err.splitlines() if line.startswith(prefix)]
    return code, out, problems


CHANNEL = ("channels:", "  c: console://")
FEED_A = ("  - name: A", "    url: https://a.example/feed")

# (document, the exact problem lines `monitor check` prints)
BROKEN = [
    # unknown keys
    pytest.param(_yaml("colour: blue"), "config.yaml:1:1: unknown key 'colour'", id="unknown-top-level-key"),
    pytest.param(
        _yaml("feeds: []", "rulez: []"),
        "config.yaml:2:1: unknown key 'rulez' (did you mean 'rules'?)",
        id="unknown-top-level-key-suggested",
    ),
    pytest.param(
        _yaml("poll:", "  intervall: 10m"),
        "config.yaml:2:3: unknown key 'intervall' (did you mean 'interval'?)",
        id="unknown-poll-key-suggested",
    ),
    pytest.param(
        _yaml("feeds:", *FEED_A, "    full-text: always"),
        "config.yaml:4:5: unknown key 'full-text' (did you mean 'full_text'?)",
        id="unknown-feed-key-suggested",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    anyy: [x]", "    notify: [c]"),
        "config.yaml:5:5: unknown key 'anyy' (did you mean 'any'?)",
        id="unknown-rule-key-suggested",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    url: console://"),
        "config.yaml:2:3: missing required key 'urls'\n"
        "config.yaml:3:5: unknown key 'url' (did you mean 'urls'?)",
        id="unknown-channel-key-suggested",
    ),
    pytest.param(
        _yaml("source: /etc/monitor.yaml"),
        "config.yaml:1:1: unknown key 'source'",
        id="internal-field-is-not-a-key",
    ),
    # wrong types
    pytest.param(
        _yaml("poll:", "  concurrency: lots"),
        "config.yaml:2:3: concurrency: must be a whole number (got 'lots')",
        id="string-for-int",
    ),
    pytest.param(
        _yaml("poll:", "  concurrency: 1.5"),
        "config.yaml:2:3: concurrency: must be a whole number (got 1.5)",
        id="float-for-int",
    ),
    pytest.param(
        _yaml("poll:", "  concurrency: 0"),
        "config.yaml:2:3: concurrency: must be at least 1 (got 0)",
        id="int-below-range",
    ),
    pytest.param(
        _yaml("poll:", "  concurrency: 100"),
        "config.yaml:2:3: concurrency: must be at most 64 (got 100)",
        id="int-above-range",
    ),
    pytest.param(
        _yaml("poll: [10m, recent]"),
        "config.yaml:1:1: poll: must be a mapping of keys (got a list)",
        id="list-for-mapping",
    ),
    pytest.param(
        _yaml("channels: [console://]"),
        "config.yaml:1:1: channels: must be a mapping of keys (got a list)",
        id="list-for-channels",
    ),
    pytest.param(
        _yaml("feeds:", "  name: A"),
        "config.yaml:1:1: feeds: must be a list (got a mapping)",
        id="mapping-for-list",
    ),
    pytest.param(
        _yaml("feeds:", "  - https://a.example/feed"),
        "config.yaml:2:5: feeds: each item must be a mapping of keys (got 'https://a.example/feed')",
        id="string-for-feed",
    ),
    pytest.param(
        _yaml("feeds:", "  - name: 5", "    url: https://a.example/feed"),
        "config.yaml:2:5: name: must be text (got 5)",
        id="int-for-string",
    ),
    pytest.param(
        _yaml("database: 5"), "config.yaml:1:1: database: must be text (got 5)", id="int-for-database"
    ),
    pytest.param(
        _yaml("feeds:", "  - name: true", "    url: https://a.example/feed"),
        "config.yaml:2:5: name: must be text (got true)",
        id="bool-for-string",
    ),
    pytest.param(
        _yaml("timezone: 2024-05-31"),
        "config.yaml:1:1: timezone: must be text (got 2024-05-31)",
        id="date-for-string",
    ),
    pytest.param(
        _yaml("fetch:", "  max_bytes: lots"),
        "config.yaml:2:3: max_bytes: must be a size such as 10MB or 512KiB (got 'lots')",
        id="bad-byte-size",
    ),
    pytest.param(
        _yaml("channels:", "  c: 5"),
        "config.yaml:2:3: channel 'c' must be an Apprise URL, a list of URLs "
        "or a mapping with 'urls' (got 5)",
        id="int-for-channel",
    ),
    # durations
    pytest.param(
        _yaml("poll:", "  interval: 10x"),
        "config.yaml:2:3: interval: bad duration '10x': write it like 90s, 10m, 1h30m or 2d",
        id="duration-unknown-unit",
    ),
    pytest.param(
        _yaml("poll:", "  recent_window: 0m"),
        "config.yaml:2:3: recent_window: bad duration '0m': must be longer than zero",
        id="duration-zero",
    ),
    pytest.param(
        _yaml("poll:", "  interval: -5"),
        "config.yaml:2:3: interval: bad duration -5: must be longer than zero",
        id="duration-negative-seconds",
    ),
    pytest.param(
        _yaml("poll:", "  interval: true"),
        "config.yaml:2:3: interval: bad duration true: write it like 90s, 10m, 1h30m or 2d",
        id="duration-bool",
    ),
    pytest.param(
        _yaml("feeds:", *FEED_A, "    interval: 1h30"),
        "config.yaml:4:5: interval: bad duration '1h30': write it like 90s, 10m, 1h30m or 2d",
        id="duration-missing-last-unit",
    ),
    pytest.param(
        _yaml("delivery:", "  backoff: [1m, 0m]"),
        "config.yaml:2:17: backoff: bad duration '0m': must be longer than zero",
        id="duration-in-list-points-at-item",
    ),
    # closed sets
    pytest.param(
        _yaml("poll:", "  first_poll: everything"),
        "config.yaml:2:3: first_poll: must be 'recent', 'all' or 'none' (got 'everything')",
        id="first-poll-unknown",
    ),
    pytest.param(
        _yaml("feeds:", *FEED_A, "    full_text: sometimes"),
        "config.yaml:4:5: full_text: must be 'auto', 'always' or 'never' (got 'sometimes')",
        id="full-text-unknown",
    ),
    # feeds
    pytest.param(
        _yaml("feeds:", "  - name: A", "    url: ftp://a.example/feed"),
        "config.yaml:3:5: url: must be an http:// or https:// address (got 'ftp://a.example/feed')",
        id="feed-url-ftp",
    ),
    pytest.param(
        _yaml("feeds:", "  - name: A", "    url: a.example/feed"),
        "config.yaml:3:5: url: must be an http:// or https:// address (got 'a.example/feed')",
        id="feed-url-no-scheme",
    ),
    pytest.param(
        _yaml("feeds:", "  - name: A", "    url: https://"),
        "config.yaml:3:5: url: must be an http:// or https:// address (got 'https://')",
        id="feed-url-no-host",
    ),
    pytest.param(
        _yaml("feeds:", "  - name: A", '    url: "http://[::1/feed"'),
        "config.yaml:3:5: url: must be an http:// or https:// address (got 'http://[::1/feed')",
        id="feed-url-broken-ipv6",
    ),
    pytest.param(
        _yaml("feeds:", "  - name: A", "    url: https://a.example:99999/feed"),
        "config.yaml:3:5: url: must be an http:// or https:// address (got 'https://a.example:99999/feed')",
        id="feed-url-port-out-of-range",
    ),
    pytest.param(
        _yaml("feeds:", "  - name: A"),
        "config.yaml:2:5: missing required key 'url'",
        id="feed-without-url",
    ),
    pytest.param(
        _yaml("feeds:", "  - url: https://a.example/feed"),
        "config.yaml:2:5: missing required key 'name'",
        id="feed-without-name",
    ),
    pytest.param(
        _yaml("feeds:", *FEED_A, "  - name: A", "    url: https://b.example/feed"),
        "config.yaml:4:5: duplicate feed name 'A' (first given on line 2)",
        id="duplicate-feed-name",
    ),
    pytest.param(
        _yaml("feeds:", *FEED_A, "  - name: B", "    url: https://a.example/feed"),
        "config.yaml:5:5: duplicate feed url 'https://a.example/feed' (first given on line 3)",
        id="duplicate-feed-url",
    ),
    # rules
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    any: [x]"),
        "config.yaml:4:5: missing required key 'notify'",
        id="rule-without-notify",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    any: [x]", "    notify: []"),
        "config.yaml:6:5: notify: must list at least one item",
        id="empty-notify",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    any: [x]", "    notify: [c, slack]"),
        "config.yaml:6:17: rule 'r' notifies unknown channel 'slack' (channels: c)",
        id="unknown-channel-in-notify",
    ),
    pytest.param(
        _yaml("rules:", "  - name: r", "    any: [x]", "    notify: [c]"),
        "config.yaml:4:14: rule 'r' notifies unknown channel 'c' (channels: none defined)",
        id="notify-without-channels",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    exclude: [opinion]", "    notify: [c]"),
        "config.yaml:4:5: rule 'r' is empty: give it 'any' or 'all' phrases, a 'query' or an 'about'",
        id="empty-rule",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    any: ['--']", "    notify: [c]"),
        "config.yaml:5:5: any: phrase '--' has no letters or digits to match",
        id="phrase-without-letters",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    all: [x, '  ']", "    notify: [c]"),
        "config.yaml:5:14: all: each item must not be empty (got '  ')",
        id="blank-phrase",
    ),
    pytest.param(
        _yaml(
            *CHANNEL,
            "rules:",
            "  - name: r",
            "    any: [x]",
            "    notify: [c]",
            "  - name: r",
            "    any: [y]",
            "    notify: [c]",
        ),
        "config.yaml:7:5: duplicate rule name 'r' (first given on line 4)",
        id="duplicate-rule-name",
    ),
    pytest.param(
        _yaml(*CHANNEL, "rules:", "  - name: r", "    notify: [d]"),
        "config.yaml:4:5: rule 'r' is empty: give it 'any' or 'all' phrases, a 'query' or an 'about'\n"
        "config.yaml:5:14: rule 'r' notifies unknown channel 'd' (channels: c)",
        id="every-problem-reported-at-once",
    ),
    # time zones
    pytest.param(
        _yaml("timezone: Mars/Olympus"),
        "config.yaml:1:1: timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Kyiv)",
        id="unknown-timezone",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    urls: [console://]", "    timezone: Kiev/Ukraine"),
        "config.yaml:4:5: timezone: unknown time zone 'Kiev/Ukraine' (use an IANA name such as Europe/Kyiv)",
        id="unknown-channel-timezone",
    ),
    # channels
    pytest.param(
        _yaml("channels:", "  c: ''"),
        "config.yaml:2:3: channel 'c': must not be empty (got '')",
        id="empty-channel-url",
    ),
    pytest.param(
        _yaml("channels:", "  c: []"),
        "config.yaml:2:3: channel 'c': must list at least one item",
        id="empty-channel-list",
    ),
    pytest.param(
        _yaml("channels:", "  c: [console://, '']"),
        "config.yaml:2:19: channel 'c': each item must not be empty (got '')",
        id="empty-url-in-channel-list",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    urls: []"),
        "config.yaml:3:5: urls: must list at least one item",
        id="empty-channel-urls",
    ),
    pytest.param(
        _yaml("channels:", '  c: "slack://"'),
        "config.yaml:2:3: channel 'c': Apprise cannot use the URL slack://… "
        "(see the Apprise URL syntax for this service)",
        id="apprise-slack-without-tokens",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    - console://", "    - notaservice://x"),
        "config.yaml:4:7: channel 'c': Apprise cannot use the URL notaservice://… "
        "(see the Apprise URL syntax for this service)",
        id="apprise-unknown-service",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    urls: [console://]", "    max_per_hour: 0"),
        "config.yaml:4:5: max_per_hour: must be at least 1 (got 0)",
        id="channel-hourly-limit-zero",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    urls: [console://]", "    digest: every day"),
        "config.yaml:4:5: digest: bad cron expression 'every day': Wrong number of fields; got 2, expected 5",
        id="channel-digest-not-cron",
    ),
    pytest.param(
        _yaml("channels:", "  c:", "    urls: [console://]", "    template:", '      body: "{feed.name}"'),
        "config.yaml:5:7: body: unknown template field {feed.name} "
        "(fields: {rules}, {feed}, {title}, {link}, {published}, {snippet})",
        id="channel-template-unknown-field",
    ),
    # database
    pytest.param(
        _yaml("database: monitor.db"),
        "config.yaml:1:1: database: not a database URL (write it like sqlite:///monitor.db or postgresql://host/db)",
        id="database-not-a-url",
    ),
    pytest.param(
        _yaml("database: sqlite:// sqlite:///monitor.db"),
        "config.yaml:1:1: database: not a database URL (write it like sqlite:///monitor.db or postgresql://host/db)",
        id="database-url-with-a-port-that-is-no-number",
    ),
    pytest.param(
        _yaml("timezone: UTC", "database: mysql://u@db/monitor"),
        "config.yaml:2:1: database: unsupported database 'mysql' (use sqlite or postgresql)",
        id="database-unsupported",
    ),
    # YAML itself
    pytest.param(
        # Valid YAML, but ruamel's round trip raised NotImplementedError on the comment
        # (found by the property test on an edit of the shipped config).
        _yaml("timezone: UTC", "retention:          # pruned daily", " kept forever)", "", "feeds: []"),
        "config.yaml:2:21: YAML: this comment cannot be kept where it is (ruamel.yaml: overlap in comment); "
        "put it on a line of its own",
        id="yaml-comment-ruamel-cannot-keep",
    ),
    pytest.param(
        _yaml("poll:", "\tinterval: 10m"),
        "config.yaml:2:1: YAML: found a tab character; indent with spaces, not tabs",
        id="yaml-tab",
    ),
    pytest.param(
        _yaml("poll:", '  interval: "10m', "feeds: []"),
        "config.yaml:2:13: YAML: this quoted string is never closed",
        id="yaml-unclosed-quote",
    ),
    pytest.param(
        _yaml("feeds: [a, b", "rules: []"),
        "config.yaml:2:6: YAML: while parsing a flow sequence expected ',' or ']', but got ':'",
        id="yaml-unclosed-bracket",
    ),
    pytest.param(
        _yaml("poll:", "  interval: 10m", "  interval: 5m"),
        'config.yaml:3:3: YAML: while constructing a mapping found duplicate key "interval" '
        'with value "5m" (original value: "10m")',
        id="yaml-duplicate-key",
    ),
    pytest.param(
        _yaml("- name: A", "  url: https://a.example/feed"),
        "config.yaml:1:1: config must be a mapping of keys such as 'feeds:' and 'rules:' (got a list)",
        id="document-is-a-list",
    ),
    pytest.param(
        _yaml("feeds"),
        "config.yaml:1:1: config must be a mapping of keys such as 'feeds:' and 'rules:' "
        "(got a single value)",
        id="document-is-a-scalar",
    ),
]


@pytest.mark.parametrize(("document", "expected"), BROKEN)
def test_check_reports_each_mistake_at_its_key(
    document: str, expected: str, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, problems = run_check(write_config(document), capsys)
    assert code == EXIT_CONFIG
    assert out == ""
    assert "\n".join(problems) == expected


def test_run_refuses_a_bad_config_before_anything_is_polled(
    write_config: WriteConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(_yaml("database: sqlite:///monitor.db", "poll:", "  interval: soon"))
    assert main(["run", "--once", "-c", str(path)]) == EXIT_CONFIG
    assert "config.yaml:3:3: interval: bad duration 'soon'" in capsys.readouterr().err
    assert not (tmp_path / "monitor.db").exists()


def test_missing_config_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"
    assert main(["check", "-c", str(path)]) == EXIT_CONFIG
    assert capsys.readouterr().err == f"{path}:0:0: cannot read config: No such file or directory\n"


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes("timezone: Europe/Kyiv # Київ\n".encode("cp1251"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}:1:1: config is not UTF-8 text"]


def test_valid_config_passes_check(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        _yaml(*CHANNEL, "feeds:", *FEED_A, "rules:", "  - name: r", "    any: [x]", "    notify: [c]")
    )
    code, out, problems = run_check(path, capsys)
    assert (code, problems) == (0, [])
    assert out == f"{path}: OK (1 feeds, 1 rules, 1 channels)\n"


def test_empty_file_is_a_valid_config_with_defaults(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(""))
    assert settings.feeds == () and settings.rules == () and settings.channels == {}
    assert settings.poll.interval == timedelta(minutes=10)
    assert settings.poll.first_poll == "recent"
    assert settings.poll.recent_window == timedelta(hours=24)


# --- the shipped config.yaml -------------------------------------------------------


def test_shipped_config_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, problems = run_check(SHIPPED_CONFIG, capsys)
    assert (code, problems) == (0, [])
    assert out.startswith(f"{SHIPPED_CONFIG}: OK (")


def test_shipped_config_commented_channel_examples_are_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommenting the example channels (with their variables set) gives a valid config."""
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    examples = re.findall(r"^  # ([\w-]+: \"?\w+://.*)$", text, flags=re.MULTILINE)
    assert len(examples) >= 3, "the shipped config lost its channel examples"
    for example in examples:
        text = text.replace(f"  # {example}", f"  {example}")
    monkeypatch.setenv("SMTP_USER", "monitor")
    monkeypatch.setenv("SMTP_PASS", "s3cret")
    monkeypatch.setenv("SLACK_TOKENS", "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, check_url=check_url)
    assert len(settings.channels) == 1 + len(examples)
    assert settings.channels["ops-email"].urls[0].startswith("mailtos://monitor:s3cret@")


def test_shipped_config_values() -> None:
    settings = load_settings(SHIPPED_CONFIG, environ={}, check_url=check_url)
    assert settings.source == SHIPPED_CONFIG
    assert settings.database == f"sqlite:///{SHIPPED_CONFIG.parent / 'monitor.db'}"
    assert settings.poll.first_poll == "recent"
    bbc = next(f for f in settings.feeds if f.name == "BBC World")
    assert settings.feed_interval(bbc) == timedelta(minutes=5)
    assert all(rule.notify for rule in settings.rules)


# --- load_settings directly: ConfigError.problems ------------------------------------


def test_problems_carry_path_line_column_and_message(write_config: WriteConfig) -> None:
    path = write_config(_yaml("poll:", "  intervall: 10m", "  first_poll: later"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems == [
        ConfigProblem(str(path), 2, 3, "unknown key 'intervall' (did you mean 'interval'?)"),
        ConfigProblem(str(path), 3, 3, "first_poll: must be 'recent', 'all' or 'none' (got 'later')"),
    ]
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)


def test_cross_reference_problems_are_all_listed(write_config: WriteConfig) -> None:
    path = write_config(
        _yaml(
            *CHANNEL,
            "rules:",
            "  - name: one",
            "    any: [x]",
            "    notify: [mail]",
            "  - name: two",
            "    any: [y]",
            "    notify: [c, slack]",
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [(p.line, p.column) for p in caught.value.problems] == [(6, 14), (9, 17)]
    assert [p.message.split(" notifies ")[1] for p in caught.value.problems] == [
        "unknown channel 'mail' (channels: c)",
        "unknown channel 'slack' (channels: c)",
    ]


def test_url_check_is_the_callers_choice(write_config: WriteConfig) -> None:
    """Without a checker nothing judges URLs; with one, its reason is reported at the URL."""
    path = write_config(
        _yaml("channels:", "  c:", "    urls:", "      - json://ok.example", "      - bad://x")
    )
    assert load_settings(path).channels["c"].urls == ("json://ok.example", "bad://x")

    def refuse_bad(url: str) -> str | None:
        return "not today" if url.startswith("bad:") else None

    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_url=refuse_bad)
    assert [str(p).removeprefix(str(path)) for p in caught.value.problems] == [":5:9: channel 'c': not today"]


# --- ${VAR} substitution ----------------------------------------------------------


def test_missing_variable_is_named(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLACK_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_TOKEN_FILE", raising=False)
    path = write_config(_yaml("channels:", '  slack: "slack://${SLACK_TOKEN}/#ukraine"'))
    code, _, problems = run_check(path, capsys)
    assert code == EXIT_CONFIG
    assert problems == ["config.yaml:2:3: channel 'slack': environment variable SLACK_TOKEN is not set"]


def test_variable_from_environment(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_HOST", "hooks.example.org")
    monkeypatch.setenv("HOOK_PATH", "alerts")
    path = write_config(_yaml("channels:", '  hook: "json://${HOOK_HOST}/${HOOK_PATH}"'))
    settings = load_settings(path, check_url=check_url)
    assert settings.channels["hook"].urls == ("json://hooks.example.org/alerts",)


def test_variable_from_file(write_config: WriteConfig, tmp_path: Path) -> None:
    secret = tmp_path / "smtp_pass"
    secret.write_text("s3cret\n", encoding="utf-8")
    path = write_config(_yaml("channels:", '  mail: "mailtos://ops:${SMTP_PASS}@smtp.example.org"'))
    settings = load_settings(path, environ={"SMTP_PASS_FILE": str(secret)}, check_url=check_url)
    assert settings.channels["mail"].urls == ("mailtos://ops:s3cret@smtp.example.org",)


def test_variable_beats_its_file(write_config: WriteConfig, tmp_path: Path) -> None:
    path = write_config(_yaml("channels:", '  hook: "json://${HOST}/"'))
    env = {"HOST": "direct.example", "HOST_FILE": str(tmp_path / "absent")}
    assert load_settings(path, environ=env).channels["hook"].urls == ("json://direct.example/",)


def test_unreadable_variable_file_is_a_config_error(write_config: WriteConfig, tmp_path: Path) -> None:
    path = write_config(_yaml("channels:", "  hook:", '    - "json://${HOST}/"'))
    absent = tmp_path / "absent"
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"HOST_FILE": str(absent)})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3:7: channel 'hook': cannot read HOST_FILE ({absent}): No such file or directory"
    ]


@pytest.mark.parametrize("target", ["/dev/zero", "big"], ids=["device", "large-file"])
def test_a_variable_file_larger_than_any_secret_is_read_no_further(
    write_config: WriteConfig, tmp_path: Path, target: str
) -> None:
    """``SMTP_PASS_FILE=/dev/zero`` was read until memory ran out, on every reload."""
    secret = Path(target) if target.startswith("/") else tmp_path / target
    if not target.startswith("/"):
        secret.write_bytes(b"x" * (64 * 1024 + 1))
    path = write_config(_yaml("channels:", '  hook: "json://${HOST}/"'))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"HOST_FILE": str(secret)})
    assert [p.message for p in caught.value.problems] == [
        f"channel 'hook': cannot read HOST_FILE ({secret}): larger than 64 KiB, more than any secret"
    ]


def test_variable_file_that_is_not_utf8(write_config: WriteConfig, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_bytes(b"\xff\xfe")
    path = write_config(_yaml("channels:", '  hook: "json://${HOST}/"'))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"HOST_FILE": str(secret)})
    assert [p.message for p in caught.value.problems] == [
        f"channel 'hook': cannot read HOST_FILE ({secret}): not UTF-8 text"
    ]


def test_unresolved_variables_may_stay_for_commands_that_send_nothing(write_config: WriteConfig) -> None:
    path = write_config(_yaml("channels:", '  hook: "json://${HOST}/"'))
    settings = load_settings(path, environ={}, require_env=False)
    assert settings.channels["hook"].urls == ("json://${HOST}/",)


# --- database URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        pytest.param("sqlite:///monitor.db", "sqlite:///{dir}/monitor.db", id="relative-next-to-config"),
        pytest.param("sqlite:///data/m.db", "sqlite:///{dir}/data/m.db", id="relative-subdirectory"),
        pytest.param("sqlite:////var/lib/m.db", "sqlite:////var/lib/m.db", id="absolute-kept"),
        pytest.param("'sqlite:///:memory:'", "sqlite:///:memory:", id="memory-kept"),
        pytest.param("postgresql://u@db/monitor", "postgresql://u@db/monitor", id="postgres-kept"),
    ],
)
def test_database_url(configured: str, expected: str, tmp_path: Path) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    path = config_dir / "config.yaml"
    path.write_text(_yaml(f"database: {configured}"), encoding="utf-8")
    assert load_settings(path).database == expected.format(dir=config_dir)


def test_environment_overrides_database(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql://monitor@db.internal/monitor")
    path = write_config(_yaml("database: sqlite:///monitor.db"))
    assert load_settings(path).database == "postgresql://monitor@db.internal/monitor"


def test_empty_environment_override_is_ignored(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "")
    path = write_config(_yaml("database: sqlite:///monitor.db"))
    assert load_settings(path).database == f"sqlite:///{tmp_path / 'monitor.db'}"


def test_bad_environment_override_names_the_variable(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "s3cret-not-a-url")
    code, _, problems = run_check(write_config(_yaml("timezone: UTC")), capsys)
    assert code == EXIT_CONFIG
    assert problems == [
        "config.yaml:1:1: MONITOR_DATABASE_URL (from the environment): not a database URL "
        "(write it like sqlite:///monitor.db or postgresql://host/db)"
    ]


# --- channel forms ------------------------------------------------------------------


def test_channel_forms(write_config: WriteConfig) -> None:
    path = write_config(
        _yaml(
            "timezone: Europe/London",
            "channels:",
            "  one: json://a.example/",
            "  many: [json://b.example/, json://c.example/]",
            "  full:",
            "    urls: [json://d.example/]",
            "    timezone: Europe/Kyiv",
        )
    )
    settings = load_settings(path, check_url=check_url)
    assert {name: spec.urls for name, spec in settings.channels.items()} == {
        "one": ("json://a.example/",),
        "many": ("json://b.example/", "json://c.example/"),
        "full": ("json://d.example/",),
    }
    assert settings.channel_timezone("full") == ZoneInfo("Europe/Kyiv")
    assert settings.channel_timezone("one") == ZoneInfo("Europe/London")
    assert settings.channel_timezone("not-a-channel") == ZoneInfo("Europe/London")


def test_settings_are_frozen(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(_yaml("timezone: UTC")))
    with pytest.raises(ValueError, match="frozen"):
        settings.timezone = "Europe/Kyiv"


# --- durations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10m", timedelta(minutes=10), id="minutes"),
        pytest.param("90s", timedelta(seconds=90), id="seconds"),
        pytest.param("24h", timedelta(hours=24), id="hours"),
        pytest.param("2d", timedelta(days=2), id="days"),
        pytest.param("1w", timedelta(weeks=1), id="weeks"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="compound"),
        pytest.param("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4), id="all-units"),
        pytest.param(" 1h 30m ", timedelta(hours=1, minutes=30), id="spaces"),
        pytest.param(90, timedelta(seconds=90), id="bare-int-is-seconds"),
        pytest.param(1.5, timedelta(seconds=1.5), id="bare-float-is-seconds"),
        pytest.param(timedelta(minutes=3), timedelta(minutes=3), id="timedelta-kept"),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("0m", "bad duration '0m': must be longer than zero", id="zero"),
        pytest.param(0, "bad duration 0: must be longer than zero", id="zero-seconds"),
        pytest.param(-1, "bad duration -1: must be longer than zero", id="negative"),
        pytest.param("10x", "bad duration '10x': write it like 90s, 10m, 1h30m or 2d", id="unknown-unit"),
        pytest.param("-5m", "bad duration '-5m': write it like 90s, 10m, 1h30m or 2d", id="negative-text"),
        pytest.param("1.5h", "bad duration '1.5h': write it like 90s, 10m, 1h30m or 2d", id="fraction"),
        pytest.param("1h30", "bad duration '1h30': write it like 90s, 10m, 1h30m or 2d", id="no-last-unit"),
        pytest.param("m", "bad duration 'm': write it like 90s, 10m, 1h30m or 2d", id="unit-only"),
        pytest.param("", "bad duration '': write it like 90s, 10m, 1h30m or 2d", id="empty"),
        pytest.param("ten minutes", "bad duration 'ten minutes': write it like", id="words"),
        pytest.param(True, "bad duration true: write it like", id="bool"),
        pytest.param(None, "bad duration (empty): write it like", id="none"),
        pytest.param(float("inf"), "bad duration inf: too long", id="infinite"),
        pytest.param("99999999999w", "bad duration '99999999999w': too long", id="overflow"),
    ],
)
def test_parse_duration_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("90s", "1m30s", id="seconds-carry"),
        pytest.param("1h30m", "1h30m", id="compound"),
        pytest.param("2d", "2d", id="days"),
        pytest.param("1w", "7d", id="weeks-as-days"),
        pytest.param("3600s", "1h", id="hour"),
    ],
)
def test_format_duration(text: str, canonical: str) -> None:
    assert format_duration(parse_duration(text)) == canonical
    assert parse_duration(canonical) == parse_duration(text)


def test_format_zero_duration() -> None:
    assert format_duration(timedelta(0)) == "0s"


def test_forgiving_shapes_people_write(write_config: WriteConfig) -> None:
    """A section left empty takes its defaults; a single phrase needs no list brackets."""
    path = write_config(_yaml("poll:", "rules:", "feeds:"))
    settings = load_settings(path)
    assert settings.poll.interval == timedelta(minutes=10) and settings.rules == ()
    path = write_config(_yaml(*CHANNEL, "rules:", "  - name: r", "    any: ATACMS", "    notify: c"))
    [rule] = load_settings(path).rules
    assert (rule.any, rule.notify) == (("ATACMS",), ("c",))
