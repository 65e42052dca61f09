"""MkDocs hook: the docstrings' Sphinx roles (``:func:`name```, ``:class:`~pkg.mod.Name```) shown as plain code in
the API reference, the way a reader of the source reads them; a leading ``~`` keeps the last name only."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|mod|class|data|meth|attr|obj|exc):<code>(~?)([^<]+)</code>")


def _as_code(match: re.Match) -> str:
    name = match.group(2)
    return f"<code>{name.rsplit('.', 1)[-1] if match.group(1) else name}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return ROLE.sub(_as_code, html)
