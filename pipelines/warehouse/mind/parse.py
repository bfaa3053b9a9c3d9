"""Reading and validating MIND's two files (no database).

Every line is checked; the first bad one raises a :class:`DataError` naming its file and line,
so an import is all or nothing. Besides the shape of each line, three things a file can get
wrong as a whole are refused: an empty file, an impression id on two lines, and a history that
contradicts the time order (see :func:`_check_history_order`). Lines out of time order are
normal in MIND and load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipelines.core.errors import DataError

NEWS_ID = re.compile(r"^N(\d+)$")
_USER_ID = re.compile(r"^U(\d+)$")
_IMPRESSION = re.compile(r"^N(\d+)-([01])$")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"

IMPRESSION_COLUMNS = ["mind_impression", "user_id", "external_id", "article_id", "event_ts", "position", "clicked"]
HISTORY_COLUMNS = ["user_id", "article_id", "external_id"]


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        fh = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    with fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield lineno, line.split("\t")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None


def parse_news(path: Path) -> pd.DataFrame:
    rows = []
    for lineno, parts in _lines(path):
        if len(parts) < 6:
            raise DataError(f"{path}:{lineno}: expected at least 6 tab-separated fields, got {len(parts)}")
        match = NEWS_ID.match(parts[0])
        if not match:
            raise DataError(f"{path}:{lineno}: bad news id {parts[0][:40]!r} (expected N<digits>)")
        if not parts[1]:
            raise DataError(f"{path}:{lineno}: empty category")
        rows.append((int(match.group(1)), parts[0], parts[1], parts[2] or parts[1], parts[3], parts[4], parts[5]))
    if not rows:
        raise DataError(f"{path}: no articles (the file is empty)")
    frame = pd.DataFrame(
        rows, columns=["article_id", "external_id", "category", "subcategory", "title", "abstract", "url"]
    )
    dup = frame["article_id"].duplicated()
    if dup.any():
        raise DataError(f"{path}: news id {frame.loc[dup, 'external_id'].iloc[0]} appears twice")
    return frame


def parse_behaviors(path: Path, known_articles: set[int]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(impressions, history, unknown) from behaviors.tsv; validates every line.

    Impressions and history entries of articles missing from news.tsv are kept (the import
    adds those articles with unknown metadata); ``unknown`` counts such references.
    """
    imps: list[tuple] = []
    history: list[tuple] = []
    unknown = 0
    first_line: dict[int, int] = {}  # impression id -> line
    lines: list[tuple[int, datetime, int, str, list[int]]] = []  # user, time, line, user text, history
    for lineno, parts in _lines(path):
        if len(parts) != 5:
            raise DataError(f"{path}:{lineno}: expected 5 tab-separated fields, got {len(parts)}")
        imp_text, user, when, hist, shown = parts
        if not imp_text.isdigit():
            raise DataError(f"{path}:{lineno}: bad impression id {imp_text[:40]!r}")
        imp_id = int(imp_text)
        if imp_id in first_line:
            raise DataError(f"{path}:{lineno}: impression id {imp_id} is also on line {first_line[imp_id]}")
        first_line[imp_id] = lineno
        umatch = _USER_ID.match(user)
        if not umatch:
            raise DataError(f"{path}:{lineno}: bad user id {user[:40]!r} (expected U<digits>)")
        try:
            ts = datetime.strptime(when.strip(), TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise DataError(f"{path}:{lineno}: bad time {when[:40]!r} (expected {TIME_FORMAT})") from None
        user_id = int(umatch.group(1))
        hist_ids = []
        for token in hist.split():
            match = NEWS_ID.match(token)
            if not match:
                raise DataError(f"{path}:{lineno}: bad history entry {token[:40]!r}")
            article = int(match.group(1))
            hist_ids.append(article)
            history.append((user_id, article, user))
            unknown += article not in known_articles
        lines.append((user_id, ts, lineno, user, hist_ids))
        tokens = shown.split()
        if not tokens:
            raise DataError(f"{path}:{lineno}: no impressions")
        for position, token in enumerate(tokens):
            match = _IMPRESSION.match(token)
            if not match:
                raise DataError(f"{path}:{lineno}: bad impression {token[:40]!r} (expected N<digits>-0 or -1)")
            article = int(match.group(1))
            unknown += article not in known_articles
            imps.append((imp_id, user_id, user, article, ts, position, match.group(2) == "1"))
    if not lines:
        raise DataError(f"{path}: no impressions (the file is empty)")
    _check_history_order(path, lines)
    return (
        pd.DataFrame(imps, columns=IMPRESSION_COLUMNS),
        pd.DataFrame(history, columns=HISTORY_COLUMNS),
        unknown,
    )


def _check_history_order(path: Path, lines: list[tuple[int, datetime, int, str, list[int]]]) -> None:
    """Refuse a history that lost a click: the impossible order of events in MIND terms.

    A click in MIND is a flag on its impression, so it cannot precede that impression within a
    line. What a file can get wrong is the history: a line's history lists the user's clicks
    made before the line's time, so the clicks before a later time include those before an
    earlier one. A later line whose history lacks an article an earlier line of the same user
    lists would need a click to have happened after it was already history. Lines may come in
    any order in the file; they are compared in time order (ties are not compared).
    """
    lines = sorted(lines, key=lambda line: (line[0], line[1], line[2]))
    user = None
    earlier: dict[int, tuple[int, datetime]] = {}  # article -> (line, time) of lines before ``t``
    pending: dict[int, tuple[int, datetime]] = {}  # the same for lines at time ``t``
    t = None
    for user_id, ts, lineno, user_text, hist in lines:
        if user_id != user:
            user, earlier, pending, t = user_id, {}, {}, ts
        elif ts != t:
            earlier.update(pending)
            pending, t = {}, ts
        if earlier:
            missing = earlier.keys() - set(hist)
            if missing:
                article = min(missing)
                line0, ts0 = earlier[article]
                raise DataError(
                    f"{path}:{lineno}: history of {user_text} at {ts:%Y-%m-%d %H:%M:%S} lacks N{article}, which "
                    f"line {line0} lists as clicked before {ts0:%Y-%m-%d %H:%M:%S}: a history cannot lose a click"
                )
        for article in hist:
            pending.setdefault(article, (lineno, ts))
