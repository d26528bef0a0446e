"""The languages whose word forms rules match, and the scripts they are written in."""

from __future__ import annotations

LANGUAGES: dict[str, str] = {
    "en": "English",
    "uk": "Ukrainian",
    "ru": "Russian",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pl": "Polish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ar": "Arabic",
    "tr": "Turkish",
}
"""ISO 639-1 code -> name, for every language with word forms of its own."""

LATIN: tuple[str, ...] = ("en", "de", "fr", "es", "pl", "it", "pt", "nl", "tr")
CYRILLIC: tuple[str, ...] = ("uk", "ru")
ARABIC: tuple[str, ...] = ("ar",)


def known(code: str) -> bool:
    """Whether ``code`` is one of LANGUAGES (``uk``, not ``UK`` or ``ua``)."""
    return code in LANGUAGES


def listing() -> str:
    """``en, uk, ru, ...`` for error messages."""
    return ", ".join(LANGUAGES)
