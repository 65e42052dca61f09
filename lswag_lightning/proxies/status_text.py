"""Status texts: one line, cause then fix, whatever an exception's own message looks like.

A status lands in a table cell, a W&B summary field and the callback's warning, so it is one line. Exceptions from
torch or from the user's model may carry many: a dynamo error adds its "Explanation:", "Hint:", "Developer debug
context:" and "from user code: File ..." blocks, and some torch errors ask the reader to open an issue. ``one_line``
keeps the message's first line (and dynamo's explanation, which holds the underlying error), drops the stack
excerpts and the bug-report requests, and collapses whitespace.
"""

from __future__ import annotations

import re

#: the longest status message kept (characters); a longer one ends with an ellipsis
MAX_CHARS = 400

_DROPPED_LINE = re.compile(
    r"^\s*(from user code:|File \"|Set TORCH_LOGS|Hint:|Developer debug context:|For more details|"
    r"You can suppress|To execute this test|Traceback \(most recent call last\)|While executing|Original traceback)",
)
_BUG_REPORT = re.compile(
    r"[^.;:!?\n]*\b(please\s+(open|file|report|submit)|open\s+an\s+issue|file\s+an\s+issue|report\s+(a|this)\s+bug|"
    r"github\.com/pytorch/pytorch/issues)\b(?:https?://\S+|[^.;!?\n])*[.;!?]?",
    re.IGNORECASE,
)
_EXPLANATION = re.compile(r"^\s*Explanation:\s*(.+)$")

_TRACEBACK_HINT = "the traceback is logged at DEBUG by lswag_lightning.proxies.session"


def unknown_fix(exc: BaseException) -> str:
    """The fix of a failure no pass knows better: where the exception came from (the model's own code, or torch)
    and what is left to do."""
    if _raised_by_model_code(exc):
        return (
            "the model's own code raised this: make its forward run on the probe batch, or leave these proxies out "
            f"({_TRACEBACK_HINT})"
        )
    return f"no known fix for this torch error on this model: leave these proxies out ({_TRACEBACK_HINT})"


def _raised_by_model_code(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc`` is outside torch and outside this package."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    path = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return "/torch/" not in path and "/lswag_lightning/" not in path


def one_line(text: str) -> str:
    """``text`` as one line: its first line (plus a dynamo ``Explanation:``), no stack excerpt, no request to open
    an issue, whitespace collapsed, at most ``MAX_CHARS`` characters."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    kept = [lines[0]]
    kept += [m.group(1) for line in lines[1:] if (m := _EXPLANATION.match(line))]
    message = " — ".join(part.strip() for part in kept if not _DROPPED_LINE.match(part))
    message = _BUG_REPORT.sub("", message)
    message = re.sub(r"\s+", " ", message).strip(" ;—")
    if len(message) > MAX_CHARS:
        message = message[: MAX_CHARS - 1].rstrip() + "…"
    return message
