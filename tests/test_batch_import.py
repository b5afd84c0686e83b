"""Reading a batch file safely: hostile or huge CSV and .xlsx files are refused early with one
plain message (size, rows, cell length, zip bombs, XML entities), Excel's UTF-16 and UTF-8-BOM
CSVs are read, and user text echoed in a message is cut short."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from mirrago import batchfile, batchtable
from mirrago.batchfile import read_batch_bytes, read_batch_csv

PERSON = "https://images.example.com/persons/a.jpg"
GARMENT = "https://images.example.com/garments/b.png"
HEADER = "target_image_url,garment_image_url,username"
JARGON = ("0x", "byte", "field limit", "Traceback", "Error", "codec", "131072")

# --------------------------------------------------------------------------- workbooks by hand

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
        '/package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName='
        '"/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sharedStrings+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}"><Relationship '
        f'Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_NS}" xmlns:r="{_REL}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}"><Relationship '
        f'Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship '
        f'Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    ),
}


def workbook(sheet_rows: str, shared: str = "", prolog: str = "", extra: int = 0) -> bytes:
    """A minimal .xlsx: `sheet_rows` is the sheet's <row> elements, `shared` the shared
    strings' <si> elements, `prolog` goes before the shared strings' root (a DOCTYPE),
    `extra` adds that many small parts."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<?xml version="1.0"?><worksheet xmlns="{_NS}"><sheetData>{sheet_rows}'
            "</sheetData></worksheet>",
        )
        archive.writestr(
            "xl/sharedStrings.xml",
            f'<?xml version="1.0"?>{prolog}<sst xmlns="{_NS}">{shared}</sst>',
        )
        for number in range(extra):
            archive.writestr(f"xl/media/part{number}.xml", "<x/>")
    return out.getvalue()


def bomb(megabytes: int) -> bytes:
    """A workbook whose header cell is a shared string of `megabytes` MB of "a" (about 1 KB
    a megabyte once compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<?xml version="1.0"?><worksheet xmlns="{_NS}"><sheetData><row r="1">'
            '<c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>',
        )
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?><sst xmlns="{_NS}"><si><t>'.encode())
            for _ in range(megabytes):
                part.write(b"a" * (1 << 20))
            part.write(b"</t></si></sst>")
    return out.getvalue()


def shared_row(*indexes: int) -> str:
    return "<row>" + "".join(f'<c t="s"><v>{i}</v></c>' for i in indexes) + "</row>"


def strings(*texts: str) -> str:
    return "".join(f"<si><t>{text}</t></si>" for text in texts)


def csv_bytes(rows: list[list[str]], header: str = HEADER) -> bytes:
    buffer = io.StringIO()
    buffer.write(header + "\n")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def assert_plain(problem: str) -> None:
    """One line a user can act on: no jargon, no traceback, no long echo."""
    assert "\n" not in problem and len(problem) < 400, problem
    for word in JARGON:
        assert word not in problem, problem


# --------------------------------------------------------------------------- zip bombs


def test_a_workbook_that_unpacks_to_100_mb_is_refused_before_reading_it(tmp_path: Path) -> None:
    data = bomb(100)
    assert len(data) < 120_000

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert table.rows == [] and len(table.problems) == 1
    assert "unpacks to more than 50 MB" in table.problems[0]
    assert_plain(table.problems[0])


def test_a_workbook_part_far_more_compressed_than_a_sheet_is_refused(tmp_path: Path) -> None:
    table = read_batch_bytes(bomb(5), tmp_path / "pairs.xlsx")  # 5 MB of one letter

    assert len(table.problems) == 1 and "unpacks to more than" in table.problems[0]


def test_a_workbook_of_thousands_of_parts_is_refused(tmp_path: Path) -> None:
    data = workbook(shared_row(0, 1), strings("target_image_url", "garment_image_url"), extra=1200)

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert len(table.problems) == 1 and "parts" in table.problems[0]
    assert_plain(table.problems[0])


def test_a_large_shared_strings_part_is_refused(tmp_path: Path) -> None:
    # 21 MB of distinct-looking text: under the 50 MB total, over the 20 MB for the text part
    texts = "".join(f"<si><t>{n:07d}-{'xyz' * 30}</t></si>" for n in range(210_000))
    data = workbook(shared_row(0, 1), texts)

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert len(table.problems) == 1 and "20 MB" in table.problems[0]


# --------------------------------------------------------------------------- XML entities


def test_openpyxl_parses_workbooks_with_defusedxml() -> None:
    import defusedxml  # noqa: F401 - it must be installed
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML is True


def test_a_billion_laughs_workbook_is_refused_with_a_plain_message(tmp_path: Path) -> None:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)
    )
    data = workbook(
        shared_row(0, 1) + shared_row(2, 2),
        "<si><t>target_image_url</t></si><si><t>garment_image_url</t></si><si><t>&l9;</t></si>",
        prolog=f"<!DOCTYPE sst [{entities}]>",
    )

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert table.rows == [] and len(table.problems) == 1
    assert "save it again" in table.problems[0]
    assert_plain(table.problems[0])


def test_an_entity_in_a_workbook_is_not_expanded(tmp_path: Path) -> None:
    data = workbook(
        shared_row(0, 1) + shared_row(2, 2),
        "<si><t>target_image_url</t></si><si><t>garment_image_url</t></si><si><t>&u;</t></si>",
        prolog=f'<!DOCTYPE sst [<!ENTITY u "{PERSON}">]>',
    )

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert table.rows == [] and "save it again" in table.problems[0]


# --------------------------------------------------------------------------- rows and bytes


def test_a_csv_past_the_row_cap_is_refused_naming_the_limit_and_what_to_do(
    tmp_path: Path,
) -> None:
    data = csv_bytes([[PERSON, GARMENT, f"u{n}"] for n in range(batchfile.PAGE_MAX_ROWS + 1)])

    imported = batchtable.import_file("pairs.csv", data)  # the page's defaults

    assert imported.rows == [] and len(imported.problems) == 1
    problem = imported.problems[0]
    assert "more than 10,000 rows" in problem and "split" in problem
    assert "mirrago batch" in problem
    assert_plain(problem)


def test_a_csv_at_the_row_cap_is_read(tmp_path: Path) -> None:
    data = csv_bytes([[PERSON, GARMENT, f"u{n}"] for n in range(5)])

    assert len(read_batch_bytes(data, tmp_path / "p.csv", max_rows=5).rows) == 5
    refused = read_batch_bytes(data, tmp_path / "p.csv", max_rows=4)
    assert refused.rows == [] and "more than 4 rows" in refused.problems[0]


def test_the_command_line_takes_more_rows_than_the_page(tmp_path: Path) -> None:
    rows = batchfile.PAGE_MAX_ROWS + 1
    source = tmp_path / "pairs.csv"
    source.write_bytes(csv_bytes([[PERSON, GARMENT, f"u{n}"] for n in range(rows)]))

    assert batchfile.CLI_MAX_ROWS > batchfile.PAGE_MAX_ROWS
    assert len(read_batch_csv(source).rows) == rows
    refused = read_batch_csv(source, max_rows=rows - 1)
    assert refused.rows == [] and "mirrago batch" not in refused.problems[0]


def test_a_tiny_workbook_of_200000_rows_is_refused_by_the_row_cap(tmp_path: Path) -> None:
    data = workbook(
        shared_row(0, 1) + shared_row(2, 2) * 200_000,
        strings("target_image_url", "garment_image_url", PERSON),
    )
    assert len(data) < 100_000

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert table.rows == [] and len(table.problems) == 1
    assert "at most 10,000 rows" in table.problems[0] and "split" in table.problems[0]
    assert_plain(table.problems[0])


def test_a_workbook_one_row_past_the_cap_is_refused(tmp_path: Path) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["target_image_url", "garment_image_url", "username"])
    for number in range(batchfile.PAGE_MAX_ROWS + 1):
        sheet.append([PERSON, GARMENT, f"u{number}"])
    buffer = io.BytesIO()
    book.save(buffer)

    table = read_batch_bytes(buffer.getvalue(), tmp_path / "pairs.xlsx")

    assert table.rows == [] and "more than 10,000 rows" in table.problems[0]


def test_a_workbook_with_a_far_away_row_is_refused_without_filling_the_gap(
    tmp_path: Path,
) -> None:
    data = workbook(
        shared_row(0, 1) + '<row r="1000000"><c r="A1000000" t="s"><v>2</v></c></row>',
        strings("target_image_url", "garment_image_url", PERSON),
    )

    table = read_batch_bytes(data, tmp_path / "pairs.xlsx")

    assert table.rows == [] and "most of them empty" in table.problems[0]
    assert_plain(table.problems[0])


def test_blank_lines_do_not_count_as_rows(tmp_path: Path) -> None:
    data = csv_bytes([[PERSON, GARMENT, "u1"], ["", "", ""], ["", "", ""], [PERSON, GARMENT, "u2"]])

    assert len(read_batch_bytes(data, tmp_path / "p.csv", max_rows=2).rows) == 2


def test_a_file_over_the_size_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    data = b"\xff" * (batchfile.MAX_IMPORT_BYTES + 1)  # not even text

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert len(table.problems) == 1 and "25 MB" in table.problems[0]
    assert "split" in table.problems[0]
    assert_plain(table.problems[0])


def test_the_command_line_reads_no_more_than_its_size_limit(tmp_path: Path) -> None:
    source = tmp_path / "pairs.csv"
    source.write_bytes(csv_bytes([[PERSON, GARMENT, "u"]] * 50))

    table = read_batch_csv(source, max_bytes=1000)

    assert len(table.problems) == 1 and "split" in table.problems[0]


# --------------------------------------------------------------------------- cell length


def test_a_url_longer_than_the_cell_limit_is_refused_for_its_row(tmp_path: Path) -> None:
    long_url = "https://images.example.com/" + "a" * batchfile.MAX_CELL_CHARS + ".jpg"
    data = csv_bytes([[long_url, GARMENT, "u1"], [PERSON, GARMENT, "u2"]])

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert len(table.rows) == 2 and table.rows[1].job is not None
    assert table.rows[0].job is None and len(table.problems) == 1
    problem = table.problems[0]
    assert problem.startswith("line 2: target_image_url") and "2,048 characters" in problem
    assert len(problem) < 200


def test_a_long_file_name_is_a_row_problem_not_a_crash(tmp_path: Path) -> None:
    row = batchfile.check_cells(
        {"target_image_url": "x" * 5000 + ".jpg", "garment_image_url": GARMENT}, tmp_path
    )

    assert row.job is None and "characters" in row.problems[0] and len(row.problems[0]) < 200


def test_a_cell_past_the_csv_field_limit_is_one_plain_message(tmp_path: Path) -> None:
    data = csv_bytes([[PERSON, GARMENT, "u1"], [PERSON, "b" * 200_000, "u2"]])

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert table.rows == [] and len(table.problems) == 1
    assert table.problems[0].startswith("line 3: ") and "too long" in table.problems[0]
    assert_plain(table.problems[0])


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_excel_unicode_text_is_read(encoding: str, tmp_path: Path) -> None:
    """Excel's "Unicode text": UTF-16 with its byte order mark, separated by tabs."""
    text = f"target_image_url\tgarment_image_url\tusername\r\n{PERSON}\t{GARMENT}\tJosé 🙂\r\n"
    data = "\ufeff".encode(encoding) + text.encode(encoding)

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert table.problems == []
    assert table.rows[0].job.username == "José 🙂" and table.rows[0].job.target == PERSON


def test_a_utf16_csv_with_commas_is_read(tmp_path: Path) -> None:
    data = f"{HEADER}\n{PERSON},{GARMENT},ana\n".encode("utf-16")  # with its BOM

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert table.problems == [] and table.rows[0].job.username == "ana"


def test_a_utf8_csv_with_a_byte_order_mark_imports_on_the_page(tmp_path: Path) -> None:
    data = f"{HEADER}\n{PERSON},{GARMENT},José\n".encode("utf-8-sig")

    imported = batchtable.import_file("pairs.csv", data)

    assert imported.problems == [] and imported.rows[0]["username"] == "José"
    assert imported.rows[0]["target_image_url"] == PERSON


def test_a_file_not_in_utf8_says_how_to_save_it_and_where(tmp_path: Path) -> None:
    data = f"{HEADER}\n{PERSON},{GARMENT},ana\n{PERSON},{GARMENT},José\n".encode("latin-1")

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert len(table.problems) == 1
    problem = table.problems[0]
    assert problem.startswith("line 3: ") and "CSV UTF-8" in problem
    assert_plain(problem)


# --------------------------------------------------------------------------- echoes


def test_a_huge_header_cell_is_echoed_cut_short(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["a" * 100_000, "username"])
    book.active.append([PERSON, "ana"])
    buffer = io.BytesIO()
    book.save(buffer)

    imported = batchtable.import_file("pairs.xlsx", buffer.getvalue())

    assert imported.problems
    for problem in imported.problems:
        assert "columns found" not in problem or "…" in problem
        assert len(problem) < 400, problem[:500]


def test_many_columns_are_named_a_few_at_a_time(tmp_path: Path) -> None:
    header = ",".join(f"column number {n}" for n in range(300))
    data = f"{header}\n{'x,' * 299}x\n".encode()

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    found = [p for p in table.problems if "columns found" in p]
    assert found and all(len(p) < 400 for p in found) and "more" in found[0]


def test_unknown_columns_are_noted_cut_short(tmp_path: Path) -> None:
    names = ",".join(["n" * 5000] + [f"extra{n}" for n in range(50)])
    data = f"{HEADER},{names}\n{PERSON},{GARMENT},ana{',' * 51}\n".encode()

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert table.problems == [] and table.notes
    assert all(len(note) < 400 for note in table.notes)


def test_a_bad_cell_is_echoed_cut_short(tmp_path: Path) -> None:
    data = csv_bytes([[PERSON, GARMENT, "ana"]], header=HEADER + ",background")
    data = data.replace(b"ana\r\n", b"ana," + b"purple" * 300 + b"\r\n")

    table = read_batch_bytes(data, tmp_path / "pairs.csv")

    assert len(table.problems) == 1 and "background" in table.problems[0]
    assert len(table.problems[0]) < 200 and "…" in table.problems[0]


def test_shorten_cuts_with_an_ellipsis_and_keeps_one_line() -> None:
    assert batchfile.shorten("short") == "short"
    assert batchfile.shorten("a" * 100) == "a" * 39 + "…"
    assert batchfile.shorten("a" * 100, limit=10) == "a" * 9 + "…"
    assert batchfile.shorten("two\nlines\tand\rtabs") == "two lines and tabs"


def test_a_long_second_sheet_that_says_its_size_does_not_refuse_the_first(
    tmp_path: Path,
) -> None:
    book = Workbook()  # not write-only: each sheet starts with its size, as Excel writes it
    first, second = book.active, book.create_sheet("catalogue")
    first.append(["target_image_url", "garment_image_url"])
    first.append([PERSON, GARMENT])
    for number in range(2 * batchfile.PAGE_MAX_ROWS + 200):
        second.append([f"product {number}"])
    buffer = io.BytesIO()
    book.save(buffer)

    table = read_batch_bytes(buffer.getvalue(), tmp_path / "pairs.xlsx")

    assert table.problems == [] and len(table.rows) == 1
