"""log: one record is one line of the text log, whatever its values hold."""

from __future__ import annotations

import logging

import pytest

from monitor.log import configure


def test_a_value_with_line_breaks_cannot_forge_a_record(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure("INFO", "text")
        forged = 'x\n2026-12-04T00:00:00Z INFO monitor.pipeline poll feed="Bank" status=ok\r\x1b[2J'
        logging.getLogger("monitor.test").warning('poll error="%s"', forged)
        try:
            raise ValueError("a bug")
        except ValueError:
            logging.getLogger("monitor.test").exception("crash")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith(
        'poll error="x\\n2026-12-04T00:00:00Z INFO monitor.pipeline poll feed="Bank" status=ok\\r\\x1b[2J"'
    )
    assert lines[1].endswith("ERROR monitor.test crash")
    assert lines[2] == "Traceback (most recent call last):"  # a traceback keeps its lines
    assert lines[-1] == "ValueError: a bug"
