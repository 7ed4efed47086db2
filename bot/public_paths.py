"""Messages shown outside the server name no place on it: absolute paths become what a lead knows.

A refusal may carry a file's path (a duplicate phrasing "also in
/srv/deskmate/kb/billing/x.md:12", an OSError's file name). Before a message
leaves the server (an API error, a console summary), every absolute path in
it is shown relative to the project folder that holds it ("kb/billing/x.md",
"data/nlu/greet.yml"), or by its file name alone when it lies elsewhere.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List, Tuple

# An absolute POSIX path of two parts or more ("/srv/deskmate/kb/billing/x.md"); "/faq" alone is not one,
# nor is "and/or". Quotes, brackets, colons (a line number after a file) and white space end a part.
_PART = r"[^\s/'\"`:;,()\[\]{}<>]+"
ABSOLUTE_PATH = re.compile(rf"(?<![\w.~/-])/(?:{_PART}/)+{_PART}")

# (folder, how a lead reads it): "" is the project folder itself (its contents are shown relative to it).
Root = Tuple[Path, str]


def roots_of(named: Iterable[Root]) -> List[Root]:
    """``named`` folders with their resolved forms too (a symlinked folder), deepest first."""
    roots = {(form, label) for folder, label in named for form in (Path(folder), Path(folder).resolve())}
    return sorted(roots, key=lambda root: (len(root[0].parts), str(root[0])), reverse=True)


def public_message(text: str, roots: Iterable[Root]) -> str:
    """``text`` with every absolute path made relative to the first of ``roots`` that holds it, or cut to
    its file name (module docstring)."""
    ordered = list(roots)

    def shown(match: "re.Match[str]") -> str:
        path = Path(match.group(0))
        for folder, label in ordered:
            if path == folder or folder in path.parents:
                relative = path.relative_to(folder).as_posix()
                return "/".join(part for part in (label, "" if relative == "." else relative) if part) or "."
        return path.name

    return ABSOLUTE_PATH.sub(shown, text)
