"""Reading, validating, carving and subsampling data sets (src/textcls/data/prepare.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from textcls.data import prepare as data
from textcls.data import readers
from textcls.errors import DataError
from textcls.config.params import DatasetParams


def make_spec(path: Path, format: str = "csv", files: dict | None = None, **kw) -> DatasetParams:
    """A DatasetParams named 'toy' reading from ``path``."""
    return DatasetParams(name="toy", format=format, path=str(path), files=files or {"train": "train.csv"}, **kw)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def assert_fix_error(excinfo, path: Path, row: int | None = None):
    """The DataError names the file (and row) and says how to fix it."""
    message = str(excinfo.value)
    assert str(path) in message, message
    assert "Fix" in message, message
    if row is not None:
        assert f"row {row}" in message or f"line {row}" in message, message


# --------------------------------------------------------------------------- AG News CSV

AG_NEWS_SAMPLE = (
    '"3","Wall St. Bears Claw Back, Into the Black (Reuters)","Reuters - Short-sellers, Wall Street\'s '
    'dwindling\\band of ultra-cynics, are seeing green again."\n'
    '"4","The Race is On (SPACE.com)","SPACE.com - TORONTO -- A second\\team of rocketeers competing for the  '
    '#36;10 million prize, a path C:\\\\temp and ""Music Manifesto"" quotes."\n'
    '"1","Multi","first part\nsecond part"\n'
    '"2","Sports, again","Desc"\n'
)


AG_NAMES = ["World", "Sports", "Business", "Sci/Tech"]


def test_ag_news_csv_quirks(tmp_path):
    """Check that AG News rows keep quoted commas, literal backslashes, #36; and doubled quotes, as the hub loader does."""
    path = write(tmp_path / "test.csv", AG_NEWS_SAMPLE)
    df = readers.read_ag_news_csv(path)
    assert list(df.columns) == ["text", "label", "row"]
    assert df["label"].tolist() == [3, 4, 1, 2]  # the file's classes; encode_labels maps them to class - 1
    spec = make_spec(tmp_path, format="ag_news_csv", files={"test": "test.csv"})
    assert data.encode_labels(df, AG_NAMES, spec)["label"].tolist() == [2, 3, 0, 1]
    assert df["text"].tolist() == [
        "Wall St. Bears Claw Back, Into the Black (Reuters) "
        "Reuters - Short-sellers, Wall Street's dwindling\\band of ultra-cynics, are seeing green again.",
        "The Race is On (SPACE.com) SPACE.com - TORONTO -- A second\\team of rocketeers competing for the  "
        '#36;10 million prize, a path C:\\\\temp and "Music Manifesto" quotes.',
        "Multi first part\nsecond part",
        "Sports, again Desc",
    ]
    # the backslash "newline" is kept as two characters, not turned into a tab or newline
    assert "second\\team" in df["text"][1] and "\t" not in df["text"][1]
    assert df["row"].tolist() == [1, 2, 3, 5]  # the line each record starts on (the multi-line one: 3 to 4)


def test_ag_news_csv_matches_hub_loader(tmp_path):
    """Check that read_ag_news_csv gives exactly the records of the Hugging Face ag_news loader's parsing."""
    import csv

    path = write(tmp_path / "test.csv", AG_NEWS_SAMPLE)
    expected_texts, expected_labels = [], []
    with open(path, encoding="utf-8") as f:  # the hub loader's code (datasets ag_news.py)
        for row in csv.reader(f, quotechar='"', delimiter=",", quoting=csv.QUOTE_ALL, skipinitialspace=True):
            label, title, description = row
            expected_labels.append(int(label) - 1)
            expected_texts.append(" ".join((title, description)))
    df = readers.read_ag_news_csv(path)
    spec = make_spec(tmp_path, format="ag_news_csv", files={"test": "test.csv"})
    assert df["text"].tolist() == expected_texts
    assert data.encode_labels(df, AG_NAMES, spec)["label"].tolist() == expected_labels


def test_ag_news_real_mirror(shared_datasets_dir):
    """Check that the offline AG News mirror reads 7600 test rows, 1900 per class, with the four class names."""
    folder = shared_datasets_dir / "ag_news"
    if not (folder / "test.csv").is_file():
        pytest.skip(f"{folder} not available")
    df = readers.read_ag_news_csv(folder / "test.csv")
    assert len(df) == 7600
    assert df["label"].value_counts().sort_index().to_dict() == {1: 1900, 2: 1900, 3: 1900, 4: 1900}
    assert (df["text"].str.strip() != "").all()
    assert "A second\\team of rocketeers" in df["text"][1]  # backslash kept, as on the hub
    spec = DatasetParams(name="ag_news", format="ag_news_csv", path=str(folder), files={"test": "test.csv"})
    assert data.resolve_label_names(spec, {}) == ["World", "Sports", "Business", "Sci/Tech"]


@pytest.mark.bad_input
def test_ag_news_two_fields(tmp_path):
    """Check that an AG News row with 2 fields raises DataError naming the file and line."""
    path = write(tmp_path / "test.csv", '"1","t","d"\n"2","only title"\n')
    with pytest.raises(DataError, match="expected 3 fields") as excinfo:
        readers.read_ag_news_csv(path)
    assert_fix_error(excinfo, path, row=2)


@pytest.mark.bad_input
def test_ag_news_header_row(tmp_path):
    """Check that an AG News file with a header row raises DataError telling to remove the header."""
    path = write(tmp_path / "test.csv", '"Class Index","Title","Description"\n"1","t","d"\n')
    with pytest.raises(DataError, match="no header row") as excinfo:
        readers.read_ag_news_csv(path)
    assert_fix_error(excinfo, path, row=1)


@pytest.mark.bad_input
def test_ag_news_not_utf8(tmp_path):
    """Check that non-UTF-8 bytes in an AG News file raise DataError naming the file."""
    path = write(tmp_path / "test.csv", b'"1","caf\xe9","d"\n')
    with pytest.raises(DataError, match="not UTF-8") as excinfo:
        readers.read_ag_news_csv(path)
    assert_fix_error(excinfo, path)


@pytest.mark.bad_input
def test_ag_news_missing_classes_txt(tmp_path):
    """Check that an AG News folder without classes.txt or label_names raises DataError naming classes.txt."""
    write(tmp_path / "test.csv", '"1","t","d"\n')
    spec = make_spec(tmp_path, format="ag_news_csv", files={"test": "test.csv"})
    with pytest.raises(DataError, match="classes.txt not found") as excinfo:
        data.resolve_label_names(spec, {})
    assert_fix_error(excinfo, tmp_path / "classes.txt")


# --------------------------------------------------------------------------- tables

def test_tsv_glue_quote_none(tmp_path):
    """Check that a GLUE-style TSV (header, QUOTE_NONE) keeps double quotes inside sentences."""
    write(tmp_path / "train.tsv", 'sentence\tlabel\nit \'s a " charming " film \t1\n"bad movie\t0\nok "\t1\n')
    spec = make_spec(tmp_path, format="tsv", files={"train": "train.tsv"}, text_column="sentence")
    df = data.read_split(spec, "train")
    assert df["text"].tolist() == ['it \'s a " charming " film ', '"bad movie', 'ok "']
    assert df["label"].tolist() == ["1", "0", "1"]
    assert df["row"].tolist() == [2, 3, 4]  # file line numbers (header is line 1)
    assert df.attrs["file"] == str(tmp_path / "train.tsv")


def test_csv_string_labels_sorted(tmp_path):
    """Check that CSV string labels become ids of the sorted class names."""
    write(tmp_path / "train.csv", 'text,label\n"great, really",pos\nawful,neg\nfine,pos\n')
    spec = make_spec(tmp_path)
    df = data.read_split(spec, "train")
    names = data.resolve_label_names(spec, {"train": df})
    assert names == ["neg", "pos"]
    encoded = data.encode_labels(df, names, spec)
    assert encoded["label"].tolist() == [1, 0, 1]
    assert encoded["label"].dtype == "int64"
    assert encoded["text"].tolist() == ["great, really", "awful", "fine"]


def test_csv_integer_labels_inferred_names(tmp_path):
    """Check that integer labels without label_names get names '0'..'K-1'."""
    write(tmp_path / "train.csv", "text,label\na,0\nb,2\nc,1\n")
    spec = make_spec(tmp_path)
    df = data.read_split(spec, "train")
    assert data.resolve_label_names(spec, {"train": df}) == ["0", "1", "2"]
    assert data.encode_labels(df, ["0", "1", "2"], spec)["label"].tolist() == [0, 2, 1]


def test_jsonl(tmp_path):
    """Check that JSON Lines files are read with configurable text/label columns."""
    lines = [{"review": "good film", "y": 1, "extra": "x"}, {"review": 'say "hi"\n', "y": 0, "extra": "y"}]
    write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    spec = make_spec(tmp_path, format="jsonl", files={"train": "train.jsonl"}, text_column="review", label_column="y")
    df = data.read_split(spec, "train")
    assert df["text"].tolist() == ["good film", 'say "hi"\n']
    assert df["label"].tolist() == [1, 0]
    assert df["row"].tolist() == [1, 2]


def test_parquet(tmp_path):
    """Check that parquet files are read with their text and label columns."""
    pd.DataFrame({"text": ["a b", "c d"], "label": [1, 0]}).to_parquet(tmp_path / "train.parquet")
    spec = make_spec(tmp_path, format="parquet", files={"train": "train.parquet"})
    df = data.read_split(spec, "train")
    assert df["text"].tolist() == ["a b", "c d"]
    assert df["label"].tolist() == [1, 0]


def test_text_columns_joined(tmp_path):
    """Check that text_columns joins several columns with a single space."""
    write(tmp_path / "train.csv", 'title,body,label\nHello,"world, again",0\nBye,now,1\n')
    spec = make_spec(tmp_path, text_columns=["title", "body"])
    df = data.read_split(spec, "train")
    assert df["text"].tolist() == ["Hello world, again", "Bye now"]


# --------------------------------------------------------------------------- errors

@pytest.mark.bad_input
def test_missing_file(tmp_path):
    """Check that a missing data file raises DataError naming the file and the params key."""
    spec = make_spec(tmp_path)
    with pytest.raises(DataError, match="not found") as excinfo:
        data.read_split(spec, "train")
    assert_fix_error(excinfo, tmp_path / "train.csv")
    assert "datasets.toy.files.train" in str(excinfo.value)


@pytest.mark.bad_input
def test_missing_mirror_folder(tmp_path):
    """Check that a data folder that does not exist (no ../shared beside the clone) is named as such, with the fix."""
    spec = make_spec(tmp_path / "shared" / "datasets" / "toy")
    with pytest.raises(DataError, match=r"data folder .*shared/datasets/toy \(datasets\.toy\.path\) does not "
                                        r"exist\. Fix: put the offline mirror beside the project"):
        data.read_split(spec, "train")


@pytest.mark.parametrize("format, fname", [("csv", "train.csv"), ("tsv", "train.tsv"), ("ag_news_csv", "train.csv"),
                                           ("jsonl", "train.jsonl")])
@pytest.mark.bad_input
def test_empty_file(tmp_path, format, fname):
    """Check that an empty (0-byte) data file raises DataError naming the file."""
    path = write(tmp_path / fname, "")
    spec = make_spec(tmp_path, format=format, files={"train": fname})
    with pytest.raises(DataError) as excinfo:
        data.read_split(spec, "train")
    assert_fix_error(excinfo, path)


@pytest.mark.bad_input
def test_header_only_csv(tmp_path):
    """Check that a CSV with a header and no rows raises DataError saying it has no data rows."""
    path = write(tmp_path / "train.csv", "text,label\n")
    with pytest.raises(DataError, match="no data rows") as excinfo:
        data.read_split(make_spec(tmp_path), "train")
    assert_fix_error(excinfo, path)


@pytest.mark.bad_input
def test_missing_text_column(tmp_path):
    """Check that a missing text column raises DataError listing the file's columns."""
    path = write(tmp_path / "train.csv", "review,label\ngood,1\n")
    with pytest.raises(DataError, match=r"missing column 'text' \(columns: review, label\)") as excinfo:
        data.read_split(make_spec(tmp_path), "train")
    assert_fix_error(excinfo, path)


@pytest.mark.bad_input
def test_tsv_read_as_csv(tmp_path):
    """Check that a TSV declared as csv (wrong delimiter) fails as a missing column, hinting at the delimiter."""
    path = write(tmp_path / "train.tsv", "sentence\tlabel\na good film\t1\na bad film\t0\n")
    spec = make_spec(tmp_path, format="csv", files={"train": "train.tsv"}, text_column="sentence")
    with pytest.raises(DataError, match="missing column 'sentence'") as excinfo:
        data.read_split(spec, "train")
    assert_fix_error(excinfo, path)
    assert "delimiter" in str(excinfo.value)


@pytest.mark.bad_input
@pytest.mark.parametrize("format, fname", [("csv", "train.csv"), ("tsv", "train.tsv")])
def test_not_utf8(tmp_path, format, fname):
    """Check that non-UTF-8 bytes in a CSV/TSV raise DataError naming the file and the iconv fix."""
    sep = "," if format == "csv" else "\t"
    path = write(tmp_path / fname, f"text{sep}label\n".encode() + b"caf\xe9 au lait" + f"{sep}1\n".encode())
    spec = make_spec(tmp_path, format=format, files={"train": fname})
    with pytest.raises(DataError, match="not UTF-8") as excinfo:
        data.read_split(spec, "train")
    assert_fix_error(excinfo, path)


@pytest.mark.bad_input
def test_label_out_of_range_int(tmp_path):
    """Check that an integer label >= K raises DataError naming the file and the row."""
    path = write(tmp_path / "train.csv", "text,label\na,0\nb,1\nc,2\n")
    spec = make_spec(tmp_path, label_names=["negative", "positive"])
    df = data.read_split(spec, "train")
    with pytest.raises(DataError, match=r"label '2' is not one of the 2 classes") as excinfo:
        data.encode_labels(df, data.resolve_label_names(spec, {"train": df}), spec)
    assert_fix_error(excinfo, path, row=4)


@pytest.mark.bad_input
def test_label_unknown_string(tmp_path):
    """Check that a string label not in label_names raises DataError naming the file and the row."""
    path = write(tmp_path / "train.csv", "text,label\na,negative\nb,neutral\nc,positive\n")
    spec = make_spec(tmp_path, label_names=["negative", "positive"])
    df = data.read_split(spec, "train")
    with pytest.raises(DataError, match=r"label 'neutral'") as excinfo:
        data.encode_labels(df, ["negative", "positive"], spec)
    assert_fix_error(excinfo, path, row=3)


@pytest.mark.bad_input
def test_ag_news_class_out_of_range(tmp_path):
    """Check that an AG News class 5 with four class names raises DataError naming the file and line."""
    path = write(tmp_path / "test.csv", '"1","a","b"\n"5","c","d"\n')
    write(tmp_path / "classes.txt", "World\nSports\nBusiness\nSci/Tech\n")
    spec = make_spec(tmp_path, format="ag_news_csv", files={"test": "test.csv"})
    df = data.read_split(spec, "test")
    with pytest.raises(DataError, match=r"label '5' is not one of the 4 classes") as excinfo:
        data.encode_labels(df, data.resolve_label_names(spec, {"test": df}), spec)
    assert_fix_error(excinfo, path, row=2)


@pytest.mark.bad_input
def test_label_out_of_range_message_shows_plain_value(tmp_path):
    """Check that an out-of-range integer label from parquet is quoted as in the file, not as a numpy repr."""
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 2]}).to_parquet(path)
    spec = make_spec(tmp_path, format="parquet", files={"train": "train.parquet"}, label_names=["neg", "pos"])
    df = data.read_split(spec, "train")
    with pytest.raises(DataError) as excinfo:
        data.encode_labels(df, ["neg", "pos"], spec)
    assert_fix_error(excinfo, path, row=3)
    assert "np.int64" not in str(excinfo.value)
    assert "label '2' is not one of" in str(excinfo.value)


@pytest.mark.bad_input
def test_empty_label_cell(tmp_path):
    """Check that a row with an empty label cell raises DataError naming the file and row, not a new class ''."""
    path = write(tmp_path / "train.csv", "text,label\na,0\nb,\nc,1\nd,1\n")
    spec = make_spec(tmp_path)
    df = data.read_split(spec, "train")
    with pytest.raises(DataError, match="empty label") as excinfo:
        data.check_cells(df, spec)
    assert_fix_error(excinfo, path, row=3)


@pytest.mark.bad_input
@pytest.mark.parametrize("bad_text", ['""', '"   "'])
def test_empty_text(tmp_path, bad_text):
    """Check that an empty or whitespace-only text raises DataError naming the file and the row."""
    path = write(tmp_path / "train.csv", f"text,label\ngood,1\n{bad_text},0\n")
    spec = make_spec(tmp_path)
    df = data.read_split(spec, "train")
    with pytest.raises(DataError, match="empty text") as excinfo:
        data.check_cells(df, spec)
    assert_fix_error(excinfo, path, row=3)


@pytest.mark.bad_input
@pytest.mark.parametrize("format, fname", [("jsonl", "train.jsonl"), ("parquet", "train.parquet")])
def test_null_text_or_label(tmp_path, format, fname):
    """Check that a null (NaN/None) text or label in a typed format raises DataError naming the file and
    row, instead of training on the string 'nan' or a NaN label."""
    for column, frame in (("text", {"text": ["good", None, "bad"], "label": [1, 0, 0]}),
                          ("label", {"text": ["good", "fine", "bad"], "label": [1.0, float("nan"), 0.0]})):
        path = tmp_path / fname
        if format == "jsonl":
            pd.DataFrame(frame).to_json(path, orient="records", lines=True)
        else:
            pd.DataFrame(frame).to_parquet(path)
        spec = make_spec(tmp_path, format=format, files={"train": fname})
        df = data.read_split(spec, "train")
        with pytest.raises(DataError, match=f"empty {column}") as excinfo:
            data.check_cells(df, spec)
        assert_fix_error(excinfo, path, row=2)


@pytest.mark.bad_input
def test_single_class(tmp_path):
    """Check that a data set whose rows all share one label raises DataError in prepare()."""
    write(tmp_path / "train.csv", "text,label\na,1\nb,1\nc,1\nd,1\n")
    write(tmp_path / "test.csv", "text,label\ne,1\nf,1\n")
    spec = make_spec(tmp_path, files={"train": "train.csv", "test": "test.csv"}, label_names=["neg", "pos"])
    with pytest.raises(DataError, match=r"every row has the same label \('pos'\)") as excinfo:
        data.prepare(spec, seed=0)
    # one label across several files: the message names the data set (its params key), not one file
    assert "datasets.toy" in str(excinfo.value) and "Fix" in str(excinfo.value)


# --------------------------------------------------------------------------- carving

def pool(counts: dict[int, int], prefix: str = "t") -> pd.DataFrame:
    """A labelled frame with ``counts[label]`` rows per label, unique texts."""
    texts, labels = [], []
    for label, n in counts.items():
        texts += [f"{prefix}{label}-{i}" for i in range(n)]
        labels += [label] * n
    return pd.DataFrame({"text": texts, "label": labels, "row": range(1, len(texts) + 1)})


COUNTS = {0: 120, 1: 50, 2: 30}  # 200 rows, imbalanced


def carve(df: pd.DataFrame, seed: int, carve=None, from_split: str = "train"):
    spec = make_spec(Path("."), files={from_split: "x.csv"}, carve=carve or {"validation": 0.1, "test": 0.2})
    return data.carve_splits({from_split: df}, spec, seed)


def test_carve_stratified_and_sized_from_original_pool():
    """Check that carved test/validation are stratified and sized as fractions of the original pool."""
    df = pool(COUNTS)
    frames, carved = carve(df, seed=42)
    assert carved == {"test": "carved from train", "validation": "carved from train"}
    n = len(df)
    assert abs(len(frames["test"]) - 0.2 * n) <= 1
    assert abs(len(frames["validation"]) - 0.1 * n) <= 1  # 10 % of the pool, not of what test left
    assert sum(len(f) for f in frames.values()) == n
    for split, frac in (("test", 0.2), ("validation", 0.1)):
        per_class = frames[split]["label"].value_counts().to_dict()
        for label, count in COUNTS.items():
            assert abs(per_class.get(label, 0) - frac * count) <= 1, (split, label, per_class)


def test_carve_no_overlap():
    """Check that carved splits are disjoint and together hold every original row."""
    df = pool(COUNTS)
    frames, _ = carve(df, seed=1)
    indices = [set(frames[s].index) for s in ("train", "validation", "test")]
    assert not indices[0] & indices[1] and not indices[0] & indices[2] and not indices[1] & indices[2]
    assert set().union(*indices) == set(df.index)
    texts = [set(frames[s]["text"]) for s in ("train", "validation", "test")]
    assert sum(len(t) for t in texts) == len(df)


def test_carve_deterministic_per_seed():
    """Check that carving is reproducible for a seed and differs for another seed."""
    df = pool(COUNTS)
    first, _ = carve(df, seed=42)
    second, _ = carve(df.copy(), seed=42)
    other, _ = carve(df, seed=7)
    for split in ("train", "validation", "test"):
        assert first[split]["text"].tolist() == second[split]["text"].tolist()
    assert first["test"]["text"].tolist() != other["test"]["text"].tolist()


def test_carve_all_splits_from_single_file():
    """Check that a data set with only a test file (AG News mirror) gets train, validation and test carved from it."""
    df = pool(COUNTS)
    frames, carved = carve(df, seed=0, from_split="test")
    assert carved == {"train": "carved from test", "test": "carved from test", "validation": "carved from test"}
    assert abs(len(frames["test"]) - 40) <= 1 and abs(len(frames["validation"]) - 20) <= 1
    assert len(frames["train"]) + len(frames["validation"]) + len(frames["test"]) == len(df)


def test_carve_only_missing_splits():
    """Check that carving leaves given splits alone and carves only the missing one."""
    spec = make_spec(Path("."), files={"train": "a", "test": "b"}, carve={"validation": 0.1})
    train, test = pool(COUNTS), pool({0: 5, 1: 5}, prefix="x")
    frames, carved = data.carve_splits({"train": train, "test": test}, spec, seed=0)
    assert carved == {"validation": "carved from train"}
    assert frames["test"] is test
    assert len(frames["train"]) + len(frames["validation"]) == len(train)


def test_carve_single_row_class():
    """Check that carving fails with DataError when a class has a single row."""
    df = pool({0: 20, 1: 20, 2: 1})
    with pytest.raises(DataError, match="cannot carve a stratified split.*Fix"):
        carve(df, seed=0)


@pytest.mark.bad_input
def test_carve_missing_fraction():
    """Check that a missing split without a carve fraction raises DataError pointing at carve.<split>."""
    with pytest.raises(DataError, match=r"no validation split to use or carve.*carve\.validation"):
        carve(pool(COUNTS), seed=0, carve={"test": 0.2})


@pytest.mark.bad_input
def test_carve_fractions_too_large():
    """Check that carve fractions adding up to >= 1 raise DataError."""
    with pytest.raises(DataError, match="add up to >= 1"):
        carve(pool(COUNTS), seed=0, carve={"validation": 0.5, "test": 0.6})


# --------------------------------------------------------------------------- subsampling

def test_subsample_caps_per_class():
    """Check that subsample_per_class keeps at most n rows per class and reports what was available."""
    df = pool({0: 10, 1: 3, 2: 7})
    out, available = data.subsample_per_class(df, 5, seed=0)
    assert available == {0: 10, 1: 3, 2: 7}
    assert out["label"].value_counts().sort_index().to_dict() == {0: 5, 1: 3, 2: 5}
    assert out.index.is_monotonic_increasing
    assert set(out["text"]) <= set(df["text"])
    again, _ = data.subsample_per_class(df, 5, seed=0)
    assert again["text"].tolist() == out["text"].tolist()


def test_subsample_keeps_all_when_n_exceeds():
    """Check that subsample_per_class keeps every row when n exceeds every class size."""
    df = pool({0: 4, 1: 3})
    out, available = data.subsample_per_class(df, 100, seed=0)
    assert available == {0: 4, 1: 3}
    pd.testing.assert_frame_equal(out, df)


@pytest.mark.bad_input
def test_n_per_class_above_what_is_available_warns_and_uses_all(tmp_path, caplog):
    """Check that n_per_class larger than a class has is not an error: prepare warns naming the key and the
    short classes, keeps every row, and does not mark the split as subsampled."""
    write_three_splits(tmp_path, rows("tr", 5), rows("te", 3), rows("va", 2))
    with caplog.at_level(logging.WARNING, logger="textcls.data"):
        frames, meta = data.prepare(make_spec(tmp_path, files=ALL_FILES, n_per_class={"train": 50}), seed=3)
    assert len(frames["train"]) == 10 and meta["subsampled"] == {}
    assert any("datasets.toy: n_per_class.train=50 but only {'neg': 5, 'pos': 5} available" in r.getMessage()
               for r in caplog.records), caplog.text


# --------------------------------------------------------------------------- prepare

def write_three_splits(folder: Path, train: list[tuple[str, str]], test: list[tuple[str, str]],
                       validation: list[tuple[str, str]] | None = None) -> None:
    for name, rows in (("train", train), ("test", test), ("validation", validation)):
        if rows is not None:
            body = "".join(f'"{t}",{y}\n' for t, y in rows)
            write(folder / f"{name}.csv", "text,label\n" + body)


def rows(prefix: str, n_per_class: int) -> list[tuple[str, str]]:
    return [(f"{prefix} {label} {i}", label) for label in ("neg", "pos") for i in range(n_per_class)]


ALL_FILES = {"train": "train.csv", "validation": "validation.csv", "test": "test.csv"}


def test_prepare_meta_full_splits(tmp_path):
    """Check that prepare() with all three files and no caps is marked comparable to published results."""
    write_three_splits(tmp_path, rows("tr", 5), rows("te", 3), rows("va", 2))
    frames, meta = data.prepare(make_spec(tmp_path, files=ALL_FILES), seed=3)
    assert meta["carved"] == {} and meta["subsampled"] == {}
    assert meta["comparable_to_published"] is True
    assert meta["notes"] == []
    assert meta["label_names"] == ["neg", "pos"] and meta["num_labels"] == 2
    assert meta["splits"]["train"] == {"rows": 10, "per_class": {"neg": 5, "pos": 5}}
    import hashlib

    md5 = hashlib.md5((tmp_path / "test.csv").read_bytes()).hexdigest()
    assert meta["source"]["files"]["test"] == {"file": "test.csv", "md5": md5}
    assert str(tmp_path) not in json.dumps(meta)  # outputs must not depend on where the data lives
    assert meta["duplicates_with_test"] == {"train": 0, "validation": 0}
    for split in ("train", "validation", "test"):
        assert list(frames[split].columns) == ["text", "label", "row"]
        assert list(frames[split].index) == list(range(len(frames[split])))
    json.dumps(meta)  # serialisable as is


def test_prepare_meta_carved_and_subsampled(tmp_path):
    """Check that prepare() records carved and subsampled splits and marks the numbers not comparable."""
    write_three_splits(tmp_path, rows("tr", 20), rows("te", 4))
    spec = make_spec(tmp_path, files={"train": "train.csv", "test": "test.csv"}, carve={"validation": 0.2},
                     n_per_class={"train": 6})
    frames, meta = data.prepare(spec, seed=0)
    assert meta["carved"] == {"validation": "carved from train"}
    assert meta["subsampled"] == {"train": {"n_per_class": 6, "available": {"neg": 16, "pos": 16}}}
    assert meta["comparable_to_published"] is False
    assert len(meta["notes"]) == 2
    assert meta["splits"]["train"]["per_class"] == {"neg": 6, "pos": 6}
    assert meta["splits"]["validation"]["per_class"] == {"neg": 4, "pos": 4}
    assert len(frames["test"]) == 8


def test_prepare_validation_carved_from_train_stays_comparable(tmp_path):
    """Check that carving only validation from train keeps the official test split comparable, with a note."""
    write_three_splits(tmp_path, rows("tr", 10), rows("te", 3))
    spec = make_spec(tmp_path, files={"train": "train.csv", "test": "test.csv"}, carve={"validation": 0.2})
    frames, meta = data.prepare(spec, seed=0)
    assert meta["carved"] == {"validation": "carved from train"}
    assert meta["subsampled"] == {}
    assert meta["comparable_to_published"] is True
    assert len(meta["notes"]) == 1 and "validation split was carved from train" in meta["notes"][0]
    assert len(frames["validation"]) == 4 and len(frames["train"]) == 16 and len(frames["test"]) == 6


def test_prepare_cap_above_available_is_still_comparable(tmp_path):
    """Check that an n_per_class cap that removes no rows does not mark the data as subsampled/not comparable."""
    write_three_splits(tmp_path, rows("tr", 5), rows("te", 3), rows("va", 2))
    spec = make_spec(tmp_path, files=ALL_FILES, n_per_class={"test": 1000})
    frames, meta = data.prepare(spec, seed=0)
    assert len(frames["test"]) == 6  # nothing was removed ...
    assert meta["comparable_to_published"] is True  # ... so the full published test split is used
    assert meta["notes"] == []


def test_prepare_ag_news_carves_everything(tmp_path):
    """Check that prepare() on an AG News test file alone carves train/validation/test and uses classes.txt."""
    lines = "".join(f'"{c}","title {c} {i}","description {i}"\n' for c in (1, 2, 3, 4) for i in range(10))
    write(tmp_path / "test.csv", lines)
    write(tmp_path / "classes.txt", "World\nSports\nBusiness\nSci/Tech\n")
    spec = make_spec(tmp_path, format="ag_news_csv", files={"test": "test.csv"},
                     carve={"validation": 0.1, "test": 0.2})
    frames, meta = data.prepare(spec, seed=42)
    assert meta["label_names"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert meta["carved"] == {s: "carved from test" for s in ("train", "validation", "test")}
    assert meta["comparable_to_published"] is False
    assert {s: meta["splits"][s]["rows"] for s in ("train", "validation", "test")} == \
        {"train": 28, "validation": 4, "test": 8}
    assert all(meta["splits"]["test"]["per_class"][n] == 2 for n in meta["label_names"])


def duplicate_spec(tmp_path: Path, mode: str) -> DatasetParams:
    train = rows("tr", 4) + [("shared text", "pos")]
    test = rows("te", 3) + [("shared text", "pos")]
    write_three_splits(tmp_path, train, test, rows("va", 2))
    return make_spec(tmp_path, files=ALL_FILES, on_duplicates=mode)


@pytest.mark.bad_input
def test_duplicates_warn(tmp_path, caplog):
    """Check that on_duplicates: warn keeps a train row whose text is in test, logs a warning and records the count."""
    spec = duplicate_spec(tmp_path, "warn")
    with caplog.at_level(logging.WARNING, logger="textcls.data"):
        frames, meta = data.prepare(spec, seed=0)
    assert "shared text" in frames["train"]["text"].tolist()
    assert meta["duplicates_with_test"] == {"train": 1, "validation": 0}
    assert any("also in test" in r.getMessage() for r in caplog.records)


def test_duplicates_drop(tmp_path):
    """Check that on_duplicates: drop removes the duplicated train row and keeps it in test."""
    frames, meta = data.prepare(duplicate_spec(tmp_path, "drop"), seed=0)
    assert "shared text" not in frames["train"]["text"].tolist()
    assert "shared text" in frames["test"]["text"].tolist()
    assert len(frames["train"]) == 8
    assert meta["splits"]["train"]["rows"] == 8
    assert meta["duplicates_with_test"] == {"train": 1, "validation": 0}


@pytest.mark.bad_input
def test_duplicates_error(tmp_path):
    """Check that on_duplicates: error raises DataError with a fix."""
    with pytest.raises(DataError, match=r"also in test.*Fix"):
        data.prepare(duplicate_spec(tmp_path, "error"), seed=0)


@pytest.mark.bad_input
def test_integer_labels_must_start_at_zero_without_names(tmp_path):
    """Check that 1-based integer labels without label_names raise instead of inventing an empty class '0'."""
    write(tmp_path / "train.csv", "text,label\na,1\nb,2\nc,1\nd,2\n")
    spec = make_spec(tmp_path)
    df = data.read_split(spec, "train")
    with pytest.raises(DataError, match=r"integer labels run 1\.\.2, not 0\.\.K-1") as excinfo:
        data.resolve_label_names(spec, {"train": df})
    assert "Fix" in str(excinfo.value)


def test_prepared_parquet_does_not_depend_on_the_data_location(tmp_path):
    """Check that the same files in two folders give byte-identical prepared parquet (no paths in metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    outputs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        write_three_splits(folder, rows("tr", 5), rows("te", 3), rows("va", 2))
        frames, _ = data.prepare(make_spec(folder, files=ALL_FILES), seed=3)
        pq.write_table(pa.Table.from_pandas(frames["train"], preserve_index=False), folder / "out.parquet")
        outputs.append((folder / "out.parquet").read_bytes())
    assert outputs[0] == outputs[1]
