"""Reading one raw data file into a ``text``/``label``/``row`` frame, whatever its format and encoding.

Readers return a DataFrame with columns ``text`` (str), ``label`` (raw value) and ``row`` (the record
number in its file, for error messages and traceability). C0 control characters are removed from texts
and blank lines skipped; how many goes into ``df.attrs`` (and the prepare stage's ``meta.json``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import re
import unicodedata
from pathlib import Path

import pandas as pd

from textcls.errors import DataError
from textcls.config.params import DatasetParams

logger = logging.getLogger(__name__)

MAX_FIELD_CHARS = 10_000_000  # one text field (an article is ~10^4): longer is a broken file, not data
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")  # C0 controls but tab and newline: removed from texts
_FORMAT_CHARS = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf")
INVISIBLE = re.compile(rf"[\s{re.escape(_FORMAT_CHARS)}]+")  # whitespace + zero-width/format characters
_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32 big-endian, with its byte-order mark", "UTF-32"),
         (b"\xff\xfe\x00\x00", "UTF-32 little-endian, with its byte-order mark", "UTF-32"),
         (b"\xfe\xff", "UTF-16 big-endian, with its byte-order mark", "UTF-16"),
         (b"\xff\xfe", "UTF-16 little-endian, with its byte-order mark", "UTF-16"))


def _encoding_error(path: Path, what: str, encoding: str) -> DataError:
    out = path.with_name(path.stem + ".utf8" + path.suffix)
    return DataError(f"{path}: not UTF-8: the bytes look like {what}. Fix: convert it with "
                     f"`iconv -f {encoding} -t UTF-8 '{path}' > '{out}'` and point files at the new file.")


def sniff_encoding(path: Path) -> None:
    """Fail early, naming the encoding, for text files that are UTF-16/32 (UTF-16 without a BOM decodes as
    valid UTF-8 full of NULs, so decoding alone would not notice)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    for bom, what, encoding in _BOMS:
        if head.startswith(bom):
            raise _encoding_error(path, what, encoding)
    if len(head) >= 8 and head.count(0) > len(head) // 4:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        little = odd > even  # ASCII in UTF-16LE: the second byte of each pair is 0
        raise _encoding_error(path, f"UTF-16 {'little' if little else 'big'}-endian without a byte-order mark "
                              "(every other byte is NUL)", "UTF-16LE" if little else "UTF-16BE")


def _decode_error(path: Path, err: UnicodeDecodeError) -> DataError:
    """What the undecodable bytes look like: Windows-1252 when they use its 0x80-0x9F letters, else Latin-1."""
    raw = path.read_bytes()
    bad = raw[err.start:err.start + 1]
    if any(0x80 <= b <= 0x9F for b in raw) and _decodes(raw, "cp1252"):
        what, encoding = "Windows-1252 (cp1252: its 0x80-0x9F bytes are quotes and dashes)", "WINDOWS-1252"
    else:
        what, encoding = "Latin-1 (ISO-8859-1)", "ISO-8859-1"
    return _encoding_error(path, f"{what}; byte {err.start} is {bad!r}", encoding)


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _is_blank(record: list[str]) -> bool:
    return all(not field.strip() for field in record)


def _field_too_long(path: Path, where: str, size: str) -> DataError:
    return DataError(f"{path}, {where}: a field of {size} characters, over the limit of {MAX_FIELD_CHARS:,} "
                     "(textcls.data.readers.MAX_FIELD_CHARS). Fix: check the file's quoting (an unclosed quote swallows "
                     "the rest of the file), or split that text.")


def _check_field_size(path: Path, line: int, fields, what: str = "line") -> None:
    for field in fields:
        if isinstance(field, str) and len(field) > MAX_FIELD_CHARS:
            raise _field_too_long(path, f"{what} {line}", f"{len(field):,}")


@contextlib.contextmanager
def _field_limit():
    """Python's csv refuses fields over 131,072 characters; a long article is data (truncation at
    max_length handles it): read up to MAX_FIELD_CHARS, and say so clearly beyond."""
    previous = csv.field_size_limit(MAX_FIELD_CHARS + 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_records(path: Path, delimiter: str, quoting: int, skipinitialspace: bool = False):
    """(line the record starts on, fields) per non-blank record of a UTF-8 file (a leading BOM is dropped),
    and a count of the blank lines skipped in ``stats`` (filled while the records are read)."""
    stats = {"blank_lines_skipped": 0}

    def records():
        sniff_encoding(path)
        last = 0  # the line a record starts on is the one after where the previous one ended
        try:
            with _field_limit(), open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f, delimiter=delimiter, quotechar='"', quoting=quoting,
                                    skipinitialspace=skipinitialspace)
                for record in reader:
                    start, last = last + 1, reader.line_num
                    if _is_blank(record):
                        stats["blank_lines_skipped"] += last - start + 1
                        continue
                    _check_field_size(path, start, record)
                    yield start, record
        except UnicodeDecodeError as err:
            raise _decode_error(path, err) from None
        except csv.Error as err:
            if "field larger than field limit" in str(err):  # csv stopped reading it: its size is unknown
                raise _field_too_long(path, f"line {last + 1}", "more than {:,}".format(MAX_FIELD_CHARS)) from None
            raise DataError(f"{path}, line {last + 1}: malformed CSV ({err}). Fix: check quoting.") from None

    return records(), stats


def read_ag_news_csv(path: Path) -> pd.DataFrame:
    """The original AG News CSV: ``"class","title","description"``, class 1..4, no header.

    Parsed exactly as the Hugging Face ``ag_news`` loader does (``csv`` with
    ``skipinitialspace``; text = title + " " + description), so records equal the hub's.
    Backslashes inside fields are kept, as on the hub. ``label`` keeps the file's class
    (1..K); :func:`encode_labels` maps it to 0..K-1 via ``attrs["label_offset"]``.
    """
    rows, texts, labels = [], [], []
    records, stats = _csv_records(path, ",", csv.QUOTE_ALL, skipinitialspace=True)
    for line, record in records:
        if len(record) != 3:
            raise DataError(
                f"{path}, line {line}: expected 3 fields (class, title, description), "
                f"got {len(record)}. Fix: check the delimiter (',') and quoting of that line."
            )
        label, title, description = record
        if not label.strip().lstrip("-").isdigit():
            raise DataError(
                f"{path}, line {line}: class {label!r} is not an integer 1..K. "
                "Fix: the AG News format has no header row; remove it or use format 'csv'."
            )
        rows.append(line)
        texts.append(" ".join((title, description)))
        labels.append(int(label))
    df = pd.DataFrame({"text": texts, "label": labels, "row": rows})
    df.attrs["label_offset"] = 1  # classes 1..K in the file -> ids 0..K-1
    df.attrs.update(stats)
    return df


def _read_delimited(path: Path, spec: DatasetParams) -> tuple[pd.DataFrame, list[int], dict]:
    """CSV (RFC 4180 quoting) or TSV (no quoting, as GLUE's files) with a header row."""
    delimiter, quoting = ("," , csv.QUOTE_MINIMAL) if spec.format == "csv" else ("\t", csv.QUOTE_NONE)
    records, stats = _csv_records(path, delimiter, quoting)
    header, lines, rows = None, [], []
    for line, record in records:
        if header is None:
            header = record
            continue
        if len(record) != len(header):
            raise DataError(f"{path}, line {line}: {len(record)} fields, but the header has {len(header)} "
                            f"({', '.join(header)}). Fix: check the delimiter and quoting of that line.")
        lines.append(line)
        rows.append(record)
    if header is None:
        raise DataError(f"{path} is empty. Fix: point datasets.{spec.name}.files at a file with data.")
    return pd.DataFrame(rows, columns=header, dtype=str), lines, stats  # str, as pandas' own readers give


def _read_jsonl(path: Path, spec: DatasetParams) -> tuple[pd.DataFrame, list[int], dict]:
    """One JSON object per line; blank lines skipped."""
    sniff_encoding(path)
    stats = {"blank_lines_skipped": 0}
    records, lines = [], []
    try:
        with open(path, encoding="utf-8-sig") as f:  # universal newlines: \r\r\n is a line and a blank one
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    stats["blank_lines_skipped"] += 1
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}, line {number}: not valid JSON ({err.msg}). Fix: one JSON object "
                                    "per line (JSON Lines).") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}, line {number}: a JSON {type(record).__name__}, not an object. "
                                    "Fix: one JSON object per line, with the text and label columns as keys.")
                _check_field_size(path, number, record.values())
                records.append(record)
                lines.append(number)
    except UnicodeDecodeError as err:
        raise _decode_error(path, err) from None
    if not records:
        raise DataError(f"{path} is empty. Fix: point datasets.{spec.name}.files at a file with data.")
    return pd.DataFrame.from_records(records), lines, stats


def read_table(path: Path, spec: DatasetParams) -> pd.DataFrame:
    """A CSV/TSV with header, JSON Lines or parquet file with configurable columns."""
    text_cols = spec.text_columns or [spec.text_column]
    if spec.format in ("csv", "tsv"):
        df, lines, stats = _read_delimited(path, spec)
    elif spec.format == "jsonl":
        df, lines, stats = _read_jsonl(path, spec)
    else:
        try:
            df = pd.read_parquet(path)
        except (ValueError, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(f"{path}: cannot be read as parquet ({first}). "
                            f"Fix: check datasets.{spec.name}.format.") from None
        df.columns = [c.removeprefix("\ufeff") if isinstance(c, str) else c for c in df.columns]
        lines, stats = list(range(1, len(df) + 1)), {}
        for col in text_cols:
            if col not in df.columns:
                continue
            if df[col].map(lambda v: isinstance(v, str) and v.startswith("\ufeff")).any():
                # a BOM left at the start of a cell by whatever wrote the file
                df[col] = df[col].map(lambda v: v.removeprefix("\ufeff") if isinstance(v, str) else v)
            for i, value in enumerate(df[col]):
                if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
                    _check_field_size(path, i + 1, [value], "row")
    missing = [c for c in [*text_cols, spec.label_column] if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column {missing[0]!r} (columns: {', '.join(map(str, df.columns))}). "
            f"Fix: set datasets.{spec.name}.text_column / label_column, or check the delimiter."
        )
    text = df[text_cols[0]] if len(text_cols) == 1 else df[text_cols].astype(str).agg(" ".join, axis=1)
    out = pd.DataFrame({"text": text, "label": df[spec.label_column], "row": lines})
    out.attrs.update(stats)
    return out


def remove_control_characters(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Texts without NUL and the other C0 controls (tab and newline stay), and how many were removed
    (``{}`` when none: the frame is returned as it is)."""
    texts = df["text"]
    is_str = texts.map(lambda v: isinstance(v, str))
    counts = texts[is_str].str.count(_CONTROL.pattern) if is_str.any() else pd.Series(dtype=int)
    removed = int(counts.sum()) if len(counts) else 0
    if not removed:
        return df, {}
    cleaned = texts.str.replace(_CONTROL.pattern, "", regex=True) if is_str.all() else texts.map(
        lambda v: _CONTROL.sub("", v) if isinstance(v, str) else v)
    return df.assign(text=cleaned), {"control_characters_removed": removed,
                                     "rows_with_control_characters": int((counts > 0).sum())}


def read_split(spec: DatasetParams, split: str) -> pd.DataFrame:
    path = Path(spec.path) / spec.files[split]
    if not Path(spec.path).is_dir():
        raise DataError(f"The data folder {spec.path} (datasets.{spec.name}.path) does not exist. Fix: put the "
                        "offline mirror beside the project (../shared/datasets, see README 'Offline mirror'), "
                        f"or set datasets.{spec.name}.path to the folder that holds {spec.files[split]}.")
    if not path.is_file():
        raise DataError(f"{path} not found (datasets.{spec.name}.files.{split}). "
                        f"Fix: set datasets.{spec.name}.path to the folder that holds it "
                        "(the offline mirror is ../shared/datasets/<name>).")
    df = read_ag_news_csv(path) if spec.format == "ag_news_csv" else read_table(path, spec)
    if df.empty:
        raise DataError(f"{path} has no data rows. Fix: point datasets.{spec.name}.files.{split} at a file with data.")
    stats = dict(df.attrs)  # the reader's (blank lines skipped, AG News label offset)
    df, removed = remove_control_characters(df)
    df.attrs = {**stats, **removed, "file": str(path)}
    cleaning = {k: df.attrs[k] for k in CLEANING_KEYS if df.attrs.get(k)}
    if cleaning:
        logger.warning("%s: %s (%s)", path, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in cleaning.items()),
                       "control characters are removed from texts; blank lines are skipped")
    return df


CLEANING_KEYS = ("blank_lines_skipped", "control_characters_removed", "rows_with_control_characters")
