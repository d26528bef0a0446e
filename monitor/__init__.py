"""monitor: watch news feeds and alert people when an article matches their rules."""

__version__ = "0.1.0"
