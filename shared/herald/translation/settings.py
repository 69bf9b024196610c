"""The translator function's environment (template.yaml's names)."""

from __future__ import annotations

from herald.core.settings import Settings


class TranslatorSettings(Settings):
    #: The content table: its posts' stream feeds the function, its items hold the variants.
    content_table: str
