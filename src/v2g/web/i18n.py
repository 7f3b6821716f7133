"""The portal's strings: one catalogue per language (``i18n/sv.yaml``, ``i18n/en.yaml``), the same keys in each."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The strings of ``lang`` (one of :data:`LANGUAGES`)."""
    if lang not in LANGUAGES:
        msg = f"lang: {lang!r} is not one of {', '.join(LANGUAGES)}"
        raise ValueError(msg)
    text = resources.files("v2g.web").joinpath("i18n", f"{lang}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {str(k): str(v) for k, v in data.items()}


class Translator:
    """``t("key", name=...)``: the string of the key in the page's language, with its fields filled in."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.strings = catalogue(lang)

    def __call__(self, key: str, **fields: Any) -> str:
        text = self.strings[key]  # a missing key is a programming error the catalogue test catches
        return text.format(**fields) if fields else text

    def get(self, key: str, default: str) -> str:
        """The string of ``key``, or ``default`` for a key the catalogue does not have (e.g. a configured id)."""
        return self.strings.get(key, default)


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The language cookie when valid, else the first supported language the browser asks for, else Swedish."""
    if cookie in LANGUAGES:
        return str(cookie)
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE
