"""Machine translation of posts where the community allows it (docs/translation.md).

A community's settings list the languages to fill in by machine (``machine_translations``); for
each original post that lacks one of them (no human variant, no machine variant made from its
current text, not its own language), one translation by a :class:`~herald.translation.ports.Translator`
(Amazon Translate behind the port) is stored as a language variant marked ``machine``. A human
variant always wins: a machine one never replaces it. Nothing outside the translator function
imports this package.
"""
