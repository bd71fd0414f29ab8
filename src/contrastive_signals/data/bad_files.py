"""Readers of many files: try every file, collect every problem, raise one error naming them all.

A user who fixes the first bad file of a folder should not discover the second on the next
run: :func:`read_each` reads every item, keeps the problems as ``(file, problem)`` pairs and
raises one :class:`BadFilesError` (or a reader's subclass of it) that lists each bad file on
its own line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: What a file reader raises for a bad file (gzip raises EOFError on a truncated file).
FILE_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError)


def problem_line(file: str, problem: str) -> str:
    """``"file: problem"``, or ``problem`` alone when it already starts with the file's name."""
    return problem if problem.startswith(file) else f"{file}: {problem}"


def problem_lines(problems: Sequence[tuple[str, str]]) -> str:
    """One ``"  - file: problem"`` line per problem."""
    return "\n".join(f"  - {problem_line(file, problem)}" for file, problem in problems)


class BadFilesError(ValueError):
    """One or more files are unusable. ``problems`` lists ``(file, problem)`` pairs, one per bad
    file, and the message names them all. Subclasses set ``kind`` (e.g. ``"AFM"``) for the
    message's first line: ``"2 bad AFM file(s) in <folder>:"``."""

    kind: str = ""

    def __init__(self, problems: Sequence[tuple[str, str]], *, folder: str | Path | None = None):
        self.problems = [(str(file), str(problem)) for file, problem in problems]
        where = f" in {folder}" if folder is not None else ""
        kind = f"{self.kind} " if self.kind else ""
        super().__init__(f"{len(self.problems)} bad {kind}file(s){where}:\n"
                         + problem_lines(self.problems))


def read_each(items: Iterable[tuple[str, Item]], read: Callable[[Item], Result], *,
              error: type[BadFilesError] = BadFilesError,
              catch: tuple[type[BaseException], ...] = FILE_ERRORS,
              problems: Sequence[tuple[str, str]] = (),
              folder: str | Path | None = None) -> list[Result]:
    """``[read(item) for name, item in items]``, unless a read fails: then one ``error`` listing
    every failure (sorted by file) after every item was tried.

    Args:
        items: ``(file name used in the message, what read takes)`` pairs.
        read: reads one item; a :class:`BadFilesError` it raises contributes all its problems,
            an exception of a ``catch`` type contributes ``(name, str(exception))``; anything
            else propagates at once (a bug, not a bad file).
        error: the error class raised.
        problems: problems found before reading (missing files, bad names), also listed.
        folder: named in the message.

    Raises:
        ``error``: when ``problems`` is not empty or any read failed.
    """
    found = list(problems)
    results = []
    for name, item in items:
        try:
            results.append(read(item))
        except BadFilesError as bad:
            found.extend(bad.problems)
        except catch as failure:
            found.append((name, str(failure)))
    if found:
        raise error(sorted(found), folder=folder)
    return results
