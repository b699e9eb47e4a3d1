"""Issue 14, item 12: the CSV export neutralises cells a spreadsheet would run as formulas (OWASP
CSV injection). Pure: no database."""

import csv
import io

from annotator.formats import BoxRecord, ExportMeta, ImageRecord, LabelInfo, Prediction, csv_multilabel

LABELS = ('=HYPERLINK("http://x","y")', "+cmd", "-minus", "@at", "\tTab", "cat")
META = ExportMeta(project="p", labels=tuple(LabelInfo(n) for n in LABELS))


def _rows(images, predictions=False):
    text = b"".join(csv_multilabel.write(META, iter(images), predictions=predictions)).decode()
    return list(csv.reader(io.StringIO(text)))


def test_formula_starts_in_file_names_and_labels_become_text():
    image = ImageRecord(
        1,
        "=2+5+cmd|' -C calc'!A0.png",
        10,
        20,
        tags=("cat",),
        boxes=(BoxRecord('=HYPERLINK("http://x","y")', 1, 1, 2, 2),),
        predictions=(Prediction("+cmd", 0.75),),
    )
    header, row = _rows([image], predictions=True)
    assert header[:3] == ["file_name", "width", "height"]
    assert header[3:9] == ['\'=HYPERLINK("http://x","y")', "'+cmd", "'-minus", "'@at", "'\tTab", "cat"]
    assert header[9] == '\'=HYPERLINK("http://x","y")_score' and header[-1] == "cat_score"
    assert row[0] == "'=2+5+cmd|' -C calc'!A0.png"
    assert row[1:3] == ["10", "20"] and row[3] == "1" and row[8] == "1"
    assert row[10] == "0.75"  # numbers are numbers (full precision since issue 14 item 6, not rounded)
    for cell in header + row:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_ordinary_names_are_written_as_they_are():
    (_, row) = _rows([ImageRecord(1, "photo-1.png", 4, 4)])
    assert row[0] == "photo-1.png"
