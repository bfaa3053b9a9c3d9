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

import numpy as np
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


_SHOWN = re.compile(r"N\d+-[01](?: N\d+-[01])*")
_HISTORY = re.compile(r"N\d+(?: N\d+)*")


def _numbers(texts: list[str], expected: int) -> np.ndarray:
    """The integers of validated, space-joined tokens (``N123-1`` -> 123, 1), parsed in C."""
    if not expected:
        return np.zeros(0, dtype=np.int64)
    joined = " ".join(texts).replace("N", "").replace("-", " ")
    values = np.fromstring(joined, dtype=np.int64, sep=" ")
    if len(values) != expected:  # cannot happen after validation; never load a misparse
        raise DataError(f"internal error: parsed {len(values)} numbers, expected {expected}")
    return values


def parse_behaviors(path: Path, known_articles: set[int]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(impressions, history, unknown) from behaviors.tsv; validates every line.

    Impressions and history entries of articles missing from news.tsv are kept (the import
    adds those articles with unknown metadata); ``unknown`` counts such references. Lines are
    checked one by one in Python; their tokens are converted in bulk (1 M impression rows in
    a few seconds).
    """
    first_line: dict[int, int] = {}  # impression id -> line
    linenos, imp_ids, user_ids, user_texts, times = [], [], [], [], []
    shown_texts, shown_counts, hist_texts, hist_counts = [], [], [], []
    parsed_times: dict[str, datetime] = {}
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
        ts = parsed_times.get(when)
        if ts is None:
            try:
                ts = parsed_times[when] = datetime.strptime(when.strip(), TIME_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                raise DataError(f"{path}:{lineno}: bad time {when[:40]!r} (expected {TIME_FORMAT})") from None
        hist_tokens = hist.split()
        hist_text = " ".join(hist_tokens)
        if hist_tokens and not _HISTORY.fullmatch(hist_text):
            bad = next(t for t in hist_tokens if not NEWS_ID.match(t))
            raise DataError(f"{path}:{lineno}: bad history entry {bad[:40]!r}")
        tokens = shown.split()
        if not tokens:
            raise DataError(f"{path}:{lineno}: no impressions")
        shown_text = " ".join(tokens)
        if not _SHOWN.fullmatch(shown_text):
            bad = next(t for t in tokens if not _IMPRESSION.match(t))
            raise DataError(f"{path}:{lineno}: bad impression {bad[:40]!r} (expected N<digits>-0 or -1)")
        linenos.append(lineno)
        imp_ids.append(imp_id)
        user_ids.append(int(umatch.group(1)))
        user_texts.append(user)
        times.append(ts)
        hist_texts.append(hist_text)
        hist_counts.append(len(hist_tokens))
        shown_texts.append(shown_text)
        shown_counts.append(len(tokens))
    if not linenos:
        raise DataError(f"{path}: no impressions (the file is empty)")
    _check_history_order(path, linenos, user_ids, user_texts, times, hist_texts)

    counts = np.asarray(shown_counts, dtype=np.int64)
    pairs = _numbers(shown_texts, 2 * int(counts.sum()))
    line_of = np.repeat(np.arange(len(linenos)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    user_arr = np.asarray(user_ids, dtype=np.int64)
    user_obj = np.asarray(user_texts, dtype=object)
    ts_arr = pd.DatetimeIndex(times).as_unit("us")
    imps = pd.DataFrame(
        {
            "mind_impression": np.asarray(imp_ids, dtype=np.int64)[line_of],
            "user_id": user_arr[line_of],
            "external_id": user_obj[line_of],
            "article_id": pairs[0::2],
            "event_ts": ts_arr[line_of],
            "position": np.arange(len(line_of), dtype=np.int64) - starts,
            "clicked": pairs[1::2] == 1,
        },
        columns=IMPRESSION_COLUMNS,
    )
    hcounts = np.asarray(hist_counts, dtype=np.int64)
    hist_lines = np.repeat(np.arange(len(linenos)), hcounts)
    history = pd.DataFrame(
        {
            "user_id": user_arr[hist_lines],
            "article_id": _numbers(hist_texts, int(hcounts.sum())),
            "external_id": user_obj[hist_lines],
        },
        columns=HISTORY_COLUMNS,
    )
    known = np.fromiter(known_articles, dtype=np.int64, count=len(known_articles))
    unknown = int((~np.isin(imps["article_id"].to_numpy(), known)).sum())
    unknown += int((~np.isin(history["article_id"].to_numpy(), known)).sum())
    return imps, history, unknown


def _check_history_order(
    path: Path, linenos: list[int], users: list[int], user_texts: list[str], times: list[datetime], hists: list[str]
) -> None:
    """Refuse a history that lost a click: the impossible order of events in MIND terms.

    A click in MIND is a flag on its impression, so it cannot precede that impression within a
    line. What a file can get wrong is the history: a line's history lists the user's clicks
    made before the line's time, so the clicks before a later time include those before an
    earlier one. A later line whose history lacks an article an earlier line of the same user
    lists would need a click to have happened after it was already history. Lines may come in
    any order in the file; they are compared in time order (ties are not compared).
    """
    order = sorted(range(len(linenos)), key=lambda i: (users[i], times[i], linenos[i]))
    user = t = previous = None
    earlier: dict[str, tuple[int, datetime]] = {}  # entry -> (line, time) of lines before ``t``
    pending: dict[str, tuple[int, datetime]] = {}  # the same for lines at time ``t``
    for i in order:
        if users[i] != user:
            user, earlier, pending, t, previous = users[i], {}, {}, times[i], None
        elif times[i] != t:
            earlier.update(pending)
            pending, t = {}, times[i]
        if hists[i] == previous:  # the same history as the user's line before: nothing new (MIND's case)
            continue
        previous = hists[i]
        entries = hists[i].split()
        if earlier:
            missing = earlier.keys() - set(entries)
            if missing:
                entry = min(missing, key=lambda e: (earlier[e][0], e))
                line0, ts0 = earlier[entry]
                raise DataError(
                    f"{path}:{linenos[i]}: history of {user_texts[i]} at {times[i]:%Y-%m-%d %H:%M:%S} lacks "
                    f"{entry}, which line {line0} lists as clicked before {ts0:%Y-%m-%d %H:%M:%S}: "
                    "a history cannot lose a click"
                )
        for entry in entries:
            pending.setdefault(entry, (linenos[i], times[i]))
