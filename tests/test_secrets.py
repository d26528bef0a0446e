"""A secret in a channel URL, written literally or through ${VAR}, never appears in logs,
errors, `check`, `status` or `notify-test` output."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor.cli import main
from monitor.redact import Redactor, secrets_in_url
from monitor.samples import voa_feed
from tests.conftest import JsonSink

LITERAL = "s3cretT0ken42"
FROM_ENV = "xoxb-Env-Secret-9981"
FROM_FILE = "pathsecret"  # a plain word: nothing but its substitution marks it secret


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOOK_TOKEN", FROM_ENV)
    secret = tmp_path / "path-token"
    secret.write_text(FROM_FILE + "\n", encoding="utf-8")
    monkeypatch.setenv("PATH_TOKEN_FILE", str(secret))


def _config(feed: str, sink: JsonSink) -> str:
    return f"""
database: sqlite:///monitor.db
poll: {{first_poll: all}}
channels:
  literal: "json://monitor:{LITERAL}@127.0.0.1:{sink.port}/hook"
  envvar: "json://bot:${{HOOK_TOKEN}}@127.0.0.1:{sink.port}/hook?x-token=${{HOOK_TOKEN}}"
  infile: "json://127.0.0.1:{sink.port}/hooks/${{PATH_TOKEN}}"
  slack: "slack://T1JJ3T3L2/A1BRTD4JD/{LITERAL}/#news"
feeds: [{{name: VOA, url: "{feed}"}}]
rules: [{{name: ATACMS, all: [ATACMS], notify: [literal, envvar, infile]}}]
"""


def _clean(text: str) -> None:
    assert LITERAL not in text
    assert FROM_ENV not in text
    assert FROM_FILE not in text


def test_secrets_stay_out_of_every_output(
    secret_env: None,
    httpserver: HTTPServer,
    json_sink: JsonSink,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request("/voa.xml").respond_with_data(voa_feed())
    json_sink.status[0] = 500
    path = write_config(_config(httpserver.url_for("/voa.xml"), json_sink))

    assert main(["--log-level", "DEBUG", "check", "-c", str(path)]) == 0
    assert main(["--log-level", "DEBUG", "run", "--once", "-c", str(path)]) == 0
    assert main(["--log-level", "DEBUG", "status", "-c", str(path)]) == 0
    assert main(["--log-level", "DEBUG", "status", "--json", "-c", str(path)]) == 0
    assert main(["--log-level", "DEBUG", "notify-test", "literal", "-c", str(path)]) == 1
    assert main(["--log-level", "DEBUG", "notify-test", "infile", "-c", str(path)]) == 1
    assert main(["--log-level", "DEBUG", "deliveries", "retry", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "status=retry" in err and "deliver channel=literal" in err and "deliver channel=infile" in err
    assert "***" in out + err, "the failing sends were reported, with the secret masked"
    _clean(out)
    _clean(err)
    _clean(_database_text(path.parent / "monitor.db"))


def _database_text(path: Path) -> str:
    """Every text value stored in the database (errors of deliveries and feeds included)."""
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        values = [str(v) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"') for v in row]
    assert any("***" in v for v in values), "the delivery errors were stored, masked"
    return "\n".join(values)


def test_secrets_stay_out_of_config_errors(
    secret_env: None, write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        f"""
channels:
  bad: "notaservice://user:{LITERAL}@example.org"
  bad2: "notaservice://user:${{HOOK_TOKEN}}@example.org"
"""
    )
    assert main(["check", "-c", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "Apprise cannot use the URL" in err
    _clean(out)
    _clean(err)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mailtos://me:hunter2pass@smtp.example.org?to=a@example.org", {"hunter2pass"}),
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ukraine",
            {"T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"},
        ),
        ("json://127.0.0.1:8080/alerts", set()),
        (
            "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654",
            {"123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "987654"},
        ),
    ],
    ids=["email-password", "slack-tokens", "plain-webhook", "telegram"],
)
def test_secrets_in_url(url: str, expected: set[str]) -> None:
    assert expected <= secrets_in_url(url)
    assert "ukraine" not in secrets_in_url(url) and "alerts" not in secrets_in_url(url)


def test_redactor_masks_known_secrets_and_url_passwords() -> None:
    redact = Redactor({"abcdef123"})
    assert redact("token abcdef123 and smtp://u:pw@host/x") == "token *** and smtp://u:***@host/x"
