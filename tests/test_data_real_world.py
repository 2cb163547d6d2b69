"""Real-world data-file quirks in src/textcls/data/prepare.py: byte-order marks, very long fields, control
characters, invisible-only texts, files in another encoding, and blank lines.

Every case is written in each format where it can occur (ag_news_csv, csv, tsv, jsonl, parquet), and
every test checks known answers (exact texts, labels, row numbers, counts), not just "no error".

Conventions of these files (see tests/test_data.py): labels are 0/1 (AG News writes class = label + 1);
``row`` is the physical line number in the file (line 1 = the first line; the csv/tsv header is line 1),
and for parquet the record number 1..n.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import logging
import re
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import PROJECT_ROOT

from textcls.data import prepare as data
from textcls.data import readers
from textcls.errors import DataError
from textcls.io import write_json
from textcls.config.params import SPLITS, DatasetParams, load_params

FORMATS = ("ag_news_csv", "csv", "tsv", "jsonl", "parquet")
TEXT_FORMATS = ("ag_news_csv", "csv", "tsv", "jsonl")
# formats whose texts can hold a tab, a newline or a carriage return (tsv is QUOTE_NONE: they split the record)
QUOTING_FORMATS = ("ag_news_csv", "csv", "jsonl", "parquet")
EXT = {"ag_news_csv": "csv", "csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "parquet": "parquet"}
HEADER = {"csv": ["text,label"], "tsv": ["text\tlabel"]}  # ag_news_csv and jsonl have no header line
FIRST_ROW = {"ag_news_csv": 1, "csv": 2, "tsv": 2, "jsonl": 1, "parquet": 1}  # `row` of the first record
BOM = b"\xef\xbb\xbf"
# C0 control characters that are removed: all of \x00-\x1f but tab, newline and carriage return
# (\r is removed too, but cannot be written inside an unquoted tsv field: see test_carriage_return_removed)
C0_REMOVED = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")


# --------------------------------------------------------------------------- writing files

def quote(field: str) -> str:
    return '"' + field.replace('"', '""') + '"'


def record_line(fmt: str, text: str, label: int) -> str:
    """One record of ``fmt`` whose text is ``text`` (AG News: title = first word, description = the rest)."""
    if fmt == "ag_news_csv":
        # read back as title + " " + description: the text needs a space (or be invisible-only anyway)
        assert " " in text or not "".join(c for c in text if unicodedata.category(c) != "Cf").strip(), text
        title, _, description = text.partition(" ")
        return ",".join(quote(f) for f in (str(label + 1), title, description))
    if fmt == "csv":
        return f"{quote(text)},{label}"
    if fmt == "tsv":
        assert not set("\t\n\r") & set(text), "a tsv field cannot hold a tab, newline or carriage return"
        return f"{text}\t{label}"
    if fmt == "jsonl":
        return json.dumps({"text": text, "label": label}, ensure_ascii=False)
    raise AssertionError(fmt)


def file_path(folder: Path, fmt: str, split: str = "train") -> Path:
    return folder / f"{split}.{EXT[fmt]}"


def write_lines(folder: Path, fmt: str, lines: list[str], split: str = "train", line_end: str = "\n",
                encode=lambda s: s.encode("utf-8"), prefix: bytes = b"") -> Path:
    """A text-format file of exactly these physical lines (each followed by ``line_end``)."""
    path = file_path(folder, fmt, split)
    path.write_bytes(prefix + encode("".join(line + line_end for line in lines)))
    return path


def write_records(folder: Path, fmt: str, records: list[tuple[str, int]], split: str = "train", **kw) -> Path:
    """A file of ``fmt`` with a header (csv/tsv) and one record per line (parquet: one per table row)."""
    if fmt == "parquet":
        path = file_path(folder, fmt, split)
        pq.write_table(pa.table({"text": pa.array([t for t, _ in records], pa.string()),
                                 "label": pa.array([y for _, y in records], pa.int64())}), path)
        return path
    return write_lines(folder, fmt, HEADER.get(fmt, []) + [record_line(fmt, t, y) for t, y in records], split, **kw)


def make_spec(folder: Path, fmt: str, splits=("train",), **kw) -> DatasetParams:
    return DatasetParams(name="toy", format=fmt, path=str(folder), files={s: file_path(folder, fmt, s).name
                                                                           for s in splits},
                         carve={}, label_names=["neg", "pos"], **kw)


def file_labels(fmt: str, labels: list[int]) -> list[str]:
    """The raw labels read_split returns, as strings (AG News keeps the file's class = label + 1)."""
    return [str(y + 1 if fmt == "ag_news_csv" else y) for y in labels]


def read(folder: Path, fmt: str, split: str = "train", **kw):
    """read_split + check_cells (what prepare does to each file before labels are resolved)."""
    spec = make_spec(folder, fmt, splits=(split,), **kw)
    df = data.read_split(spec, split)
    data.check_cells(df, spec)
    return df


def as_lists(df) -> tuple[list[str], list[str], list[int]]:
    return df["text"].tolist(), [str(y) for y in df["label"]], [int(r) for r in df["row"]]


def prepare_three(folder: Path, fmt: str, caplog, write_train) -> tuple[dict, dict]:
    """prepare() on train (written by ``write_train(folder)``) plus clean validation and test files."""
    write_train(folder)
    write_records(folder, fmt, [("valid one", 0), ("valid two", 1)], "validation")
    write_records(folder, fmt, [("test one", 0), ("test two", 1)], "test")
    with caplog.at_level(logging.WARNING, logger="textcls.data"):
        frames, meta = data.prepare(make_spec(folder, fmt, splits=SPLITS), seed=0)
    json.dumps(meta)  # meta.json: plain JSON types only
    assert str(folder) not in json.dumps(meta)  # and no absolute paths
    return frames, meta


def data_warnings(caplog, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("textcls.data.") and r.levelno >= logging.WARNING and path.name in r.getMessage()]


def has_number(message: str, n: int) -> bool:
    return re.search(rf"(?<![\d.]){n}(?![\d.])", message) is not None


def assert_data_error(excinfo, path: Path, row: int | None = None) -> str:
    message = str(excinfo.value)
    assert str(path) in message, message
    assert "Fix:" in message, message
    if row is not None:
        assert f"row {row}" in message or f"line {row}" in message, message
    return message


# --------------------------------------------------------------------------- 1. UTF-8 byte-order mark

@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_utf8_bom_is_not_part_of_the_first_text_label_or_column(tmp_path, fmt):
    """Check that a file starting with the UTF-8 BOM reads exactly like the same file without it: the BOM
    reaches neither the first record's text/label nor the first header column (csv/tsv find `text`)."""
    records = [("good film", 1), ("bad film", 0)]
    (tmp_path / "plain").mkdir()
    (tmp_path / "bom").mkdir()
    write_records(tmp_path / "plain", fmt, records)
    path = write_records(tmp_path / "bom", fmt, records, prefix=BOM)
    assert path.read_bytes().startswith(BOM)
    with_bom, without = as_lists(read(tmp_path / "bom", fmt)), as_lists(read(tmp_path / "plain", fmt))
    assert with_bom == without
    first = FIRST_ROW[fmt]
    assert with_bom == (["good film", "bad film"], file_labels(fmt, [1, 0]), [first, first + 1])


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt, header", [("csv", "label,text"), ("csv", '"text","label"'), ("tsv", "label\ttext")])
def test_utf8_bom_before_other_header_layouts(tmp_path, fmt, header):
    """Check that with a BOM the first header column is found when it is the label column, or quoted."""
    sep = "," if fmt == "csv" else "\t"
    first_is_label = header.startswith("label")
    body = [f"1{sep}good film", f"0{sep}bad film"] if first_is_label else [f"good film{sep}1", f"bad film{sep}0"]
    write_lines(tmp_path, fmt, [header, *body], prefix=BOM)
    assert as_lists(read(tmp_path, fmt)) == (["good film", "bad film"], ["1", "0"], [2, 3])


@pytest.mark.bad_input
@pytest.mark.parametrize("bom_column", ["text", "label"])
def test_utf8_bom_in_parquet_column_name_and_text(tmp_path, bom_column):
    """Check that parquet strips a leading U+FEFF from a column name and from the start of a text cell."""
    columns = {"text": ["\ufeffgood film", "bad film"], "label": [1, 0]}
    if bom_column == "label":
        columns = {"\ufefflabel": columns["label"], "text": columns["text"]}
    else:
        columns = {"\ufefftext": columns["text"], "label": columns["label"]}
    pq.write_table(pa.table(columns), tmp_path / "train.parquet")
    assert as_lists(read(tmp_path, "parquet")) == (["good film", "bad film"], ["1", "0"], [1, 2])


# --------------------------------------------------------------------------- 2. long fields

LONG_TEXT = "long " + ("lorem ipsum " * 20_000)[:199_995]  # 200,000 characters, one field of 199,995


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_field_longer_than_csv_default_limit_is_read_intact(tmp_path, fmt):
    """Check that a 200,000-character text (Python csv's default field limit is 131,072) is read intact."""
    assert len(LONG_TEXT) == 200_000
    write_records(tmp_path, fmt, [("short one", 0), (LONG_TEXT, 1), ("short two", 0)])
    texts, labels, rows = as_lists(read(tmp_path, fmt))
    assert [len(t) for t in texts] == [9, 200_000, 9]
    assert texts == ["short one", LONG_TEXT, "short two"]
    first = FIRST_ROW[fmt]
    assert (labels, rows) == (file_labels(fmt, [0, 1, 0]), [first, first + 1, first + 2])


@pytest.mark.bad_input
def test_max_field_chars_default():
    """Check that the field-size limit is readers.MAX_FIELD_CHARS, ten million characters by default."""
    assert readers.MAX_FIELD_CHARS == 10_000_000


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_field_over_max_field_chars(tmp_path, fmt, monkeypatch):
    """Check that a field longer than MAX_FIELD_CHARS raises DataError naming the file, the row and the limit."""
    monkeypatch.setattr(readers, "MAX_FIELD_CHARS", 1000)
    path = write_records(tmp_path, fmt, [("short text", 0), ("word " + "x" * 1500, 1), ("short again", 0)])
    with pytest.raises(DataError) as excinfo:
        read(tmp_path, fmt)
    message = assert_data_error(excinfo, path, row=FIRST_ROW[fmt] + 1)
    assert "MAX_FIELD_CHARS" in message


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_field_of_exactly_max_field_chars_is_read(tmp_path, fmt, monkeypatch):
    """Check that a text of exactly MAX_FIELD_CHARS characters is not "longer" than the limit: read intact."""
    monkeypatch.setattr(readers, "MAX_FIELD_CHARS", 1000)
    text = "word " + "x" * 995  # AG News: title + " " + description is 1000 characters too
    write_records(tmp_path, fmt, [("short text", 0), (text, 1)])
    texts, _, rows = as_lists(read(tmp_path, fmt))
    assert texts == ["short text", text] and len(texts[1]) == 1000
    assert rows == [FIRST_ROW[fmt], FIRST_ROW[fmt] + 1]


# --------------------------------------------------------------------------- 3. control characters

@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_removed_from_texts(tmp_path, fmt):
    """Check that NUL and the C0 controls (but tab/newline) are removed from texts, and that \\x0b, \\x0c and
    \\x1c-\\x1e (line breaks to str.splitlines) neither split a record nor shift the next row number."""
    assert len(C0_REMOVED) == 29
    records = [("go\x00od fi\x07lm", 1), ("plain text", 0), (f"a{C0_REMOVED}b c", 0), ("last row", 1)]
    write_records(tmp_path, fmt, records)
    first = FIRST_ROW[fmt]
    assert as_lists(read(tmp_path, fmt)) == (["good film", "plain text", "ab c", "last row"],
                                             file_labels(fmt, [1, 0, 0, 1]), [first + i for i in range(4)])


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", QUOTING_FORMATS)
def test_carriage_return_removed_tab_and_newline_kept(tmp_path, fmt):
    """Check that a carriage return inside a text is removed (a CRLF inside a field becomes LF) while tabs
    and newlines are kept."""
    records = [("tab\there and\nnew line", 1), ("carriage\r return", 0), ("windows\r\nline end", 1)]
    write_records(tmp_path, fmt, records)
    texts, labels, _ = as_lists(read(tmp_path, fmt))
    assert texts == ["tab\there and\nnew line", "carriage return", "windows\nline end"]
    assert labels == file_labels(fmt, [1, 0, 1])


CONTROL_RECORDS = [("go\x00od fi\x07lm", 1), ("bad\x1b film", 0), ("fine film", 1), ("x\x01\x02\x03 y\x04", 0)]
CONTROL_CLEANED = ["good film", "bad film", "fine film", "x y"]  # 7 characters removed from 3 rows


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_counted_in_meta_and_warned(tmp_path, fmt, caplog):
    """Check that prepare() records the removed control characters per split in meta["cleaning"] and logs a
    warning naming the file and both counts."""
    frames, meta = prepare_three(tmp_path, fmt, caplog, lambda d: write_records(d, fmt, CONTROL_RECORDS))
    assert frames["train"]["text"].tolist() == CONTROL_CLEANED
    assert frames["train"]["label"].tolist() == [1, 0, 1, 0]
    train = meta["cleaning"]["train"]
    assert train["control_characters_removed"] == 7
    assert train["rows_with_control_characters"] == 3
    assert train.get("blank_lines_skipped", 0) == 0
    for split in ("validation", "test"):  # clean files: absent, or zero
        assert meta["cleaning"].get(split, {}).get("control_characters_removed", 0) == 0
    warnings = data_warnings(caplog, file_path(tmp_path, fmt))
    assert any(has_number(m, 7) and has_number(m, 3) for m in warnings), caplog.text


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_clean_data_has_no_cleaning_key(tmp_path, fmt, caplog):
    """Check that data with nothing to remove (zero-width characters between words, emoji ZWJ sequences,
    tabs and newlines) keeps its texts unchanged, gets no meta["cleaning"] key and no warning."""
    records = [("a good\u200bfilm", 1), ("coder \U0001F469\u200d\U0001F4BB here", 0), ("plain words", 1)]
    if fmt in QUOTING_FORMATS:
        records.append(("tab\tand\nnew line", 0))
    frames, meta = prepare_three(tmp_path, fmt, caplog, lambda d: write_records(d, fmt, records))
    assert frames["train"]["text"].tolist() == [t for t, _ in records]
    assert "cleaning" not in meta, meta.get("cleaning")
    assert not [r for r in caplog.records if r.name.startswith("textcls.data.") and r.levelno >= logging.WARNING], caplog.text


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_crlf_line_ends_are_neither_blank_lines_nor_control_characters(tmp_path, fmt, caplog):
    """Check that an ordinary Windows (CRLF) file reads the same texts and rows as an LF one, and prepare()
    reports no cleaning for it."""
    records = [("good film", 1), ("bad film", 0), ("fine film", 1)]
    write_records(tmp_path, fmt, records, line_end="\r\n")
    first = FIRST_ROW[fmt]
    assert as_lists(read(tmp_path, fmt)) == (["good film", "bad film", "fine film"], file_labels(fmt, [1, 0, 1]),
                                             [first, first + 1, first + 2])
    _, meta = prepare_three(tmp_path, fmt, caplog, lambda d: write_records(d, fmt, records, line_end="\r\n"))
    assert "cleaning" not in meta, meta.get("cleaning")


def dvc_dir_md5(folder: Path) -> str:
    """DVC's hash of a directory: md5 of the sorted JSON list of its files' md5 and relpath."""
    entries = [{"md5": hashlib.md5(p.read_bytes()).hexdigest(), "relpath": p.relative_to(folder).as_posix()}
               for p in sorted(folder.rglob("*")) if p.is_file()]
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["ag_news", "sst2"])
def test_default_data_prepared_byte_identical(tmp_path, name):
    """Check that the clean default data sets still prepare to exactly the outputs dvc.lock recorded (no
    "cleaning" key, same parquet and meta.json bytes), when the mirror and params are the locked ones."""
    lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())["stages"].get(f"prepare@{name}")
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    if lock is None or name not in raw.get("datasets", {}):
        pytest.skip(f"prepare@{name} is not in dvc.lock/params.yaml")
    locked_params = lock["params"]["params.yaml"]
    if locked_params.get(f"datasets.{name}") != raw["datasets"][name] or locked_params.get("base.seed") != \
            raw.get("base", {}).get("seed", 42):
        pytest.skip(f"params.yaml differs from the params dvc.lock recorded for prepare@{name}")
    params = load_params(PROJECT_ROOT / "params.yaml")
    spec = params.datasets[name]
    mirror = PROJECT_ROOT / spec.path
    locked_mirror = next(d for d in lock["deps"] if d["path"] == spec.path)
    if not mirror.is_dir() or dvc_dir_md5(mirror) != locked_mirror["md5"]:
        pytest.skip(f"{mirror} is absent or not the mirror dvc.lock recorded")
    frames, meta = data.prepare(dataclasses.replace(spec, path=str(mirror)), params.base.seed)
    assert "cleaning" not in meta
    out = tmp_path / name
    out.mkdir()
    for split, df in frames.items():  # as stages/prepare.py writes them
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out / f"{split}.parquet")
    write_json(out / "meta.json", meta)
    assert dvc_dir_md5(out) == lock["outs"][0]["md5"]


# --------------------------------------------------------------------------- 4. invisible-only texts

INVISIBLE = ["\u200b", "\ufeff", "\u2060\u200d", " \u200b \u2060\u200e\u00ad "]


@pytest.mark.bad_input
@pytest.mark.parametrize("invisible", INVISIBLE, ids=["zwsp", "feff", "wj-zwj", "mixed-with-spaces"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_invisible_only_text_is_empty(tmp_path, fmt, invisible):
    """Check that a text of only whitespace and format characters (Cf) is an empty text: DataError naming
    the file and the row."""
    path = write_records(tmp_path, fmt, [("good film", 1), (invisible, 0), ("bad film", 0)])
    with pytest.raises(DataError) as excinfo:
        read(tmp_path, fmt)
    message = assert_data_error(excinfo, path)
    assert f"row {FIRST_ROW[fmt] + 1}: empty text" in message, message


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_width_space_between_words_kept(tmp_path, fmt):
    """Check that format characters between real words are kept unchanged (only invisible-only texts fail)."""
    records = [("good\u200bfilm here", 1), ("\u200bleading zwsp", 0), ("a word\u2060joiner", 1)]
    write_records(tmp_path, fmt, records)
    assert read(tmp_path, fmt)["text"].tolist() == [t for t, _ in records]


# --------------------------------------------------------------------------- 5. encodings other than UTF-8

ENCODINGS = {  # case: (encode, texts, names one of which the message holds, the iconv command)
    "utf-16-bom": (lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"), ["good film", "caf\u00e9 au lait"],
                   ("UTF-16",), "iconv -f UTF-16 -t UTF-8"),
    "utf-16le-ascii": (lambda s: s.encode("utf-16-le"), ["good film", "bad film"],
                       ("UTF-16LE",), "iconv -f UTF-16LE -t UTF-8"),
    "utf-16le": (lambda s: s.encode("utf-16-le"), ["good film", "caf\u00e9 au lait"],
                 ("UTF-16LE",), "iconv -f UTF-16LE -t UTF-8"),
    "windows-1252": (lambda s: s.encode("cp1252"), ["good film", "caf\u00e9 \u201cgreat\u201d"],
                     ("Windows-1252",), "iconv -f WINDOWS-1252 -t UTF-8"),
    "latin-1": (lambda s: s.encode("latin-1"), ["good film", "caf\u00e9 au lait"],
                ("Latin-1", "ISO-8859-1"), "iconv -f ISO-8859-1 -t UTF-8"),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(ENCODINGS))
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_not_utf8_names_the_encoding_and_the_iconv_command(tmp_path, fmt, case):
    """Check that a UTF-16 (with/without BOM), Windows-1252 or Latin-1 file raises DataError saying what the
    bytes look like, with the exact iconv command for the file's path."""
    encode, texts, names, iconv = ENCODINGS[case]
    lines = HEADER.get(fmt, []) + [record_line(fmt, t, y) for t, y in zip(texts, [1, 0])]
    path = write_lines(tmp_path, fmt, lines, encode=encode)
    raw = path.read_bytes()
    if case == "windows-1252":
        assert b"caf\xe9" in raw and b"\x93great\x94" in raw
    if case == "latin-1":
        assert b"caf\xe9" in raw and not any(0x80 <= b <= 0x9F for b in raw)
    with pytest.raises(DataError) as excinfo:
        read(tmp_path, fmt)
    message = assert_data_error(excinfo, path)
    assert any(n in message for n in names), message
    assert iconv in message, message
    assert message.index(iconv) < message.rindex(str(path)), f"the iconv command names the file: {message}"


# --------------------------------------------------------------------------- 6. blank lines

BLANK_RECORDS = [("first record", 1), ("second record", 0), ("third record", 1), ("fourth record", 0)]


def blank_lines_file(fmt: str) -> tuple[list[str], list[int], int]:
    """Physical lines with blank and whitespace-only lines around the records; the records' line numbers
    and the number of blank lines."""
    a, b, c, d = (record_line(fmt, t, y) for t, y in BLANK_RECORDS)
    header = HEADER.get(fmt, [])
    lines = header + ["", a, "", b, "   ", "", c, "  \t  ", d, "", ""]
    rows = [i + 1 for i, line in enumerate(lines) if line in (a, b, c, d)]
    return lines, rows, 7


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_blank_lines_skipped_rows_are_physical_lines(tmp_path, fmt):
    """Check that empty and whitespace-only lines (after the header, between records, at the end) are
    skipped, and each record's row is its line number in the file."""
    lines, rows, _ = blank_lines_file(fmt)
    assert rows == ([3, 5, 8, 10] if fmt in HEADER else [2, 4, 7, 9])
    write_lines(tmp_path, fmt, lines)
    assert as_lists(read(tmp_path, fmt)) == ([t for t, _ in BLANK_RECORDS],
                                             file_labels(fmt, [y for _, y in BLANK_RECORDS]), rows)


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_blank_lines_counted_in_meta_and_warned(tmp_path, fmt, caplog):
    """Check that prepare() records the skipped blank lines in meta["cleaning"][split] and logs a warning
    naming the file and the count."""
    lines, _, blank = blank_lines_file(fmt)
    frames, meta = prepare_three(tmp_path, fmt, caplog, lambda d: write_lines(d, fmt, lines))
    assert frames["train"]["text"].tolist() == [t for t, _ in BLANK_RECORDS]
    train = meta["cleaning"]["train"]
    assert train["blank_lines_skipped"] == blank
    assert train.get("control_characters_removed", 0) == 0
    for split in ("validation", "test"):
        assert meta["cleaning"].get(split, {}).get("blank_lines_skipped", 0) == 0
    assert any(has_number(m, blank) for m in data_warnings(caplog, file_path(tmp_path, fmt))), caplog.text


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_windows_doubled_line_ends_read_as_the_records(tmp_path, fmt):
    """Check that a file whose line ends are \\r\\r\\n (CRLF converted twice) reads exactly its records."""
    records = BLANK_RECORDS[:3]
    write_records(tmp_path, fmt, records, line_end="\r\r\n")
    texts, labels, _ = as_lists(read(tmp_path, fmt))
    assert texts == [t for t, _ in records]
    assert labels == file_labels(fmt, [y for _, y in records])


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_windows_doubled_line_ends_rows_and_blank_count(tmp_path, fmt, caplog):
    """Check that with \\r\\r\\n line ends each \\r ends a line (as Python's universal newlines and the csv
    module count): every line end leaves one blank line, records sit on lines 1, 3, 5 (3, 5, 7 after a
    header), and the stray \\r are not counted as removed control characters."""
    records = BLANK_RECORDS[:3]
    write_records(tmp_path, fmt, records, line_end="\r\r\n")
    header = len(HEADER.get(fmt, []))
    expected_rows = [2 * (header + i) + 1 for i in range(3)]
    assert as_lists(read(tmp_path, fmt))[2] == expected_rows
    frames, meta = prepare_three(tmp_path, fmt, caplog,
                                 lambda d: write_records(d, fmt, records, line_end="\r\r\n"))
    assert frames["train"]["row"].tolist() == expected_rows
    assert meta["cleaning"]["train"]["blank_lines_skipped"] == header + 3
    assert meta["cleaning"]["train"].get("control_characters_removed", 0) == 0


@pytest.mark.bad_input
@pytest.mark.parametrize("fmt", ["ag_news_csv", "csv"])
def test_blank_line_inside_a_quoted_field_is_kept(tmp_path, fmt, caplog):
    """Check that an empty line inside a quoted multi-line field is part of the text, not a skipped blank
    line, and the next record's row is still its physical line."""
    records = [("para one\n\npara two", 1), ("next record", 0)]
    write_records(tmp_path, fmt, records)
    texts, labels, rows = as_lists(read(tmp_path, fmt))
    assert texts == ["para one\n\npara two", "next record"]
    assert labels == file_labels(fmt, [1, 0])
    assert rows[1] == FIRST_ROW[fmt] + 3  # the first record spans 3 lines
    _, meta = prepare_three(tmp_path, fmt, caplog, lambda d: write_records(d, fmt, records))
    assert "cleaning" not in meta, meta.get("cleaning")
