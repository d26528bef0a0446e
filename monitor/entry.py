"""The ``monitor`` console script's entry point: the command line is imported when the
script runs, not when its file is imported.

A daemon's parse and page workers come from a fork server that first imports the main
module (``monitor.workers``), so that a worker never imports it again. For the console
script that module is the launcher pip writes, which imports its entry point at the
top: pointed at ``monitor.cli``, the fork server and every worker forked from it carried
the whole command line (pydantic, Apprise, SQLAlchemy, the config schema), about 60 MB
each that a worker never uses. Pointed here, they carry this module.
"""

from __future__ import annotations


def main() -> int:
    """Run the command line (``monitor.cli.main``)."""
    from monitor.cli import main as run  # here, not at the top: the point of this module

    return run()
