"""Product files as ``tag`` reads them (``lib.cli.files.ProductFile``): one bad line costs only
itself, wherever it sits, and every line is accounted for, in CSV, JSON Lines and Parquet."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl
import pytest

from tag_pipeline.lib.catalog.ingest import unix_newlines
from tag_pipeline.lib.cli.files import (
    BAD_ROW_COLUMNS,
    InputFileError,
    ProductFile,
    read_batches,
    write_bad_rows,
)

N_LINES = 26_000  # more than DuckDB's sniffer sample (about 20,000 lines)

# (defect, raw CSV line for data row i, expected reason)
CSV_DEFECTS = [
    ("bad_quote", lambda i: f'"M{i}","Unclosed quote shirt,"Apparel","red"'.encode(),
     "malformed_line"),
    ("bad_utf8", lambda i: f"B{i},Caf".encode() + b"\xe9 \xff shirt,desc", "invalid_encoding"),
    ("too_many_fields", lambda i: f"F{i},a,b,c,d".encode(), "malformed_line"),
    ("too_few_fields", lambda i: f"S{i}".encode(), "malformed_line"),
    ("missing_id", lambda i: b",No id shirt,desc", "missing_id"),
    ("blank_id", lambda i: b"   ,Blank id shirt,desc", "missing_id"),
    ("duplicate_id", lambda i: b"P1,Repeated shirt,desc", "duplicate_id"),
]


def hostile_csv(path: Path, newline: bytes = b"\n") -> dict[int, str]:
    """A product CSV of ``N_LINES`` lines with each defect at the start, the middle and the end;
    returns {line: expected reason} of the bad lines."""
    k = len(CSV_DEFECTS)
    # the first data lines (line 2 holds P1, which the duplicate repeats)
    places = {**{3 + j: j for j in range(k)},
              **{N_LINES // 2 + j: j for j in range(k)},
              **{N_LINES - k + 1 + j: j for j in range(k)}}  # the last lines
    expected: dict[int, str] = {}
    lines = [b"product_id,title,description"]
    for line in range(2, N_LINES + 1):
        if line in places:
            _, make, reason = CSV_DEFECTS[places[line]]
            lines.append(make(line))
            expected[line] = reason
        else:
            lines.append(f"P{line - 1},Red cotton shirt {line},slim fit".encode())
    path.write_bytes(newline.join(lines) + newline)
    return expected


def accounted(products: ProductFile) -> tuple[set[int], dict[int, str]]:
    good = set()
    for batch in products.batches(4096):
        good.update(batch["_line"].to_list())
    return good, {b.line: b.reason for b in products.bad_rows}


def test_a_hostile_csv_loses_only_its_bad_lines_wherever_they_sit(tmp_path):
    path = tmp_path / "products.csv"
    expected = hostile_csv(path)
    with ProductFile(path) as products:
        good, bad = accounted(products)
        assert bad == expected
        assert good.isdisjoint(bad) and good | set(bad) == set(range(2, N_LINES + 1))
        assert products.rows == len(good)
        dup = next(b for b in products.bad_rows if b.reason == "duplicate_id")
        assert dup.detail == "product_id P1 is already on line 2"
        utf8 = next(b for b in products.bad_rows if b.reason == "invalid_encoding")
        assert utf8.message(path).startswith(f"{path} line {utf8.line}: invalid_encoding (")


@pytest.mark.parametrize("breaks", [b"\r\n", b"mixed"])
def test_line_breaks_windows_or_mixed_keep_every_line_and_its_number(tmp_path, breaks):
    path = tmp_path / "products.csv"
    expected = hostile_csv(path, b"\n")
    if breaks == b"mixed":  # every third line ends in \r\n, every seventh in a lone \r
        raw = path.read_bytes().split(b"\n")[:-1]
        ends = [b"\r\n" if i % 3 == 0 else b"\r" if i % 7 == 0 else b"\n"
                for i in range(len(raw))]
        path.write_bytes(b"".join(line + end for line, end in zip(raw, ends, strict=True)))
    else:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    with ProductFile(path) as products:
        good, bad = accounted(products)
        assert bad == expected
        assert good | set(bad) == set(range(2, N_LINES + 1))
        first = next(products.batches(1))
        assert first["description"][0] == "slim fit"  # no \r left in a value


def test_the_copy_for_mixed_line_breaks_is_never_left_behind(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"product_id,title\r\nA,one\nB,two\rC,three")
    before = set(Path(tempfile.gettempdir()).glob("tag-pipeline-lines-*"))
    with unix_newlines(path) as read:
        assert read != path
        assert read.read_bytes() == b"product_id,title\nA,one\nB,two\nC,three"
        # on Linux the copy has no name at all while it is read
        assert set(Path(tempfile.gettempdir()).glob("tag-pipeline-lines-*")) == before
    assert set(Path(tempfile.gettempdir()).glob("tag-pipeline-lines-*")) == before
    same = tmp_path / "same.csv"
    same.write_bytes(b"product_id,title\r\nA,one\r\n")
    with unix_newlines(same) as read:
        assert read == same  # one kind of line break: read as is


def test_json_lines_and_parquet_account_for_every_row(tmp_path):
    rows = [json.dumps({"product_id": f"P{i}", "title": f"shirt {i}", "year": 2012})
            for i in range(1, 2001)]
    rows[0] = "not json"
    rows[1000] = "[1, 2]"
    rows[1500] = json.dumps({"product_id": "", "title": "no id"})
    rows[-1] = json.dumps({"product_id": "P3", "title": "again"})
    (tmp_path / "p.jsonl").write_bytes(("\n".join(rows) + "\n").encode()[:-1] + b"\r\n")
    with ProductFile(tmp_path / "p.jsonl", optional=None) as products:
        good, bad = accounted(products)
        assert bad == {1: "malformed_line", 1001: "malformed_line", 1501: "missing_id",
                       2000: "duplicate_id"}
        assert good | set(bad) == set(range(1, 2001))
        assert products.columns == ["product_id", "title", "year"]
        assert next(products.batches(5))["year"][0] == "2012"  # every column is a string

    frame = pl.DataFrame({"product_id": ["a", None, "a", "b"], "title": ["x", "y", "z", "w"],
                          "price": [1.5, 2.0, 3.0, 4.0]})
    frame.write_parquet(tmp_path / "p.parquet")
    with ProductFile(tmp_path / "p.parquet", optional=("price",)) as products:
        good, bad = accounted(products)
        assert bad == {2: "missing_id", 3: "duplicate_id"} and good == {1, 4}
        assert next(products.batches(5))["price"].to_list() == ["1.5", "4.0"]


def test_a_file_that_cannot_be_used_at_all_names_the_file_and_why(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        ProductFile(tmp_path / "nope.csv")
    (tmp_path / "a.csv").write_bytes(b"product_id,name\np1,x\n")
    with pytest.raises(InputFileError) as error:
        ProductFile(tmp_path / "a.csv")
    assert str(error.value) == (f"input file {tmp_path / 'a.csv'} lacks column(s) ['title']; "
                                "has ['product_id', 'name']")
    (tmp_path / "b.csv").write_bytes(b"product_id,ti\xfftle\np1,x\n")
    with pytest.raises(InputFileError, match=r"the header line \(line 1\) is not UTF-8"):
        ProductFile(tmp_path / "b.csv")


def test_a_labelled_file_reader_refuses_the_first_bad_line_by_its_number(tmp_path):
    path = tmp_path / "labelled.csv"
    path.write_bytes(b"product_id,title,tags\np1,x,category:A\np1,y,category:B\n,z,\n")
    with pytest.raises(InputFileError) as error:
        list(read_batches(path, 10, ("product_id", "title", "tags"), ()))
    assert str(error.value) == (f"input file {path} line 3: duplicate_id (product_id p1 is "
                                "already on line 2); 1 more bad line(s)")


def test_bad_rows_are_written_with_their_line_reason_and_raw_text(tmp_path):
    path = tmp_path / "products.csv"
    expected = hostile_csv(path)
    with ProductFile(path) as products:
        write_bad_rows(tmp_path / "rejects.csv", products.bad_rows)
    rejects = pl.read_csv(tmp_path / "rejects.csv", schema=BAD_ROW_COLUMNS)
    assert dict(zip(rejects["line"], rejects["reason"], strict=True)) == expected
    quote = rejects.filter(pl.col("reason") == "malformed_line")["raw_line"][0]
    assert quote.startswith('"M3","Unclosed quote shirt')
