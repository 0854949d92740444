"""Searching the text files under a folder for a word or phrase (blocking; run it in a
thread). Bounded: it skips hidden folders, virtual environments, build output and binary
or very large files, and stops after `MAX_FILES` files or `TIME_BUDGET_S` seconds."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILES = 20_000
MAX_FILE_BYTES = 2 * 1024 * 1024
TIME_BUDGET_S = 20.0
MAX_LISTED = 10
SKIPPED_DIRS = frozenset(
    {"node_modules", "__pycache__", "venv", "site-packages", "dist", "build", "target"}
)


@dataclass
class Match:
    path: str  # relative to the searched folder
    line: int
    text: str


@dataclass
class SearchResult:
    folder: str
    query: str
    searched: int = 0  # files read
    matches: list[Match] = field(default_factory=list)  # the first match of each file
    files_matched: int = 0
    stopped_early: str = ""  # why the search stopped before the end, if it did

    def as_tool_result(self) -> dict[str, object]:
        listed = self.matches[:MAX_LISTED]
        if self.files_matched == 0:
            summary = f"no file mentions {self.query!r}"
        else:
            noun = "file mentions" if self.files_matched == 1 else "files mention"
            places = ", ".join(f"{m.path} (line {m.line})" for m in listed[:3])
            summary = f"{self.files_matched} {noun} {self.query!r}: {places}"
        out: dict[str, object] = {
            "status": "success",
            "folder": self.folder,
            "searched": self.searched,
            "files_matched": self.files_matched,
            "summary": summary,
            "matches": [{"path": m.path, "line": m.line, "text": m.text} for m in listed],
        }
        if self.stopped_early:
            out["stopped_early"] = self.stopped_early
        return out


def search_folder(query: str, folder: str) -> dict[str, object]:
    """The search as a tool result: `folder` empty means the current directory."""
    if not query.strip():
        return {"status": "error", "error": "say what to search for"}
    where = Path(folder).expanduser() if folder else Path.cwd()
    if not where.is_dir():
        return {"status": "error", "error": f"{folder!r} is not a folder"}
    return search_text_files(query.strip(), where.resolve()).as_tool_result()


def _is_text(head: bytes) -> bool:
    return b"\0" not in head


def search_text_files(
    query: str, folder: Path, *, time_budget_s: float = TIME_BUDGET_S
) -> SearchResult:
    """Each text file under `folder` whose content holds `query` (case-insensitive)."""
    result = SearchResult(folder=str(folder), query=query)
    needle = query.casefold()
    deadline = time.monotonic() + time_budget_s
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
            if name.startswith("."):
                continue
            if result.searched >= MAX_FILES:
                result.stopped_early = f"stopped after {MAX_FILES} files"
                return result
            if time.monotonic() > deadline:
                result.stopped_early = f"stopped after {time_budget_s:g} s"
                return result
            path = Path(root) / name
            found = _first_line_with(path, needle)
            if found is None:
                continue
            result.searched += 1
            if found:
                line_no, line = found
                result.files_matched += 1
                result.matches.append(Match(str(path.relative_to(folder)), line_no, line))
    return result


def _first_line_with(path: Path, needle: str) -> tuple[int, str] | tuple[()] | None:
    """(line number, line) of the first line holding `needle`; () when none does; None
    when the file is not a readable text file of reasonable size."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not _is_text(data[:1024]):
        return None
    text = data.decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line.casefold():
            return number, line.strip()[:200]
    return ()
