"""The format registry: one list the API, the page and the CLI read (pure: no database)."""

import pytest

from annotator.formats import FormatError, registry


def test_it_lists_writers_and_readers_in_one_fixed_order():
    assert [w.name for w in registry.writers()] == ["coco", "voc", "yolo", "csv", "json", "coco_results"]
    assert [r.name for r in registry.readers()] == ["coco", "voc", "yolo", "labelstudio", "json"]


def test_it_names_export_files_and_media_types_as_before():
    expected = {
        "coco": ("project-3-coco.json", "application/json"),
        "voc": ("project-3-voc.zip", "application/zip"),
        "yolo": ("project-3-yolo.zip", "application/zip"),
        "csv": ("project-3-csv.csv", "text/csv"),
        "json": ("project-3-json.json", "application/json"),
        "coco_results": ("project-3-coco_results.json", "application/json"),
    }
    assert {w.name: (w.file_name("project-3"), w.media_type) for w in registry.writers()} == expected


def test_only_yolo_ships_images():
    assert [w.name for w in registry.writers() if w.images] == ["yolo"]


def test_it_refuses_an_unknown_format_naming_the_known_ones():
    with pytest.raises(FormatError, match="use one of coco, voc, yolo, csv, json"):
        registry.get_writer("xml")
    with pytest.raises(FormatError, match="Unknown import format “csv”"):
        registry.get_reader("csv")


def test_it_refuses_a_second_format_of_the_same_name():
    with pytest.raises(ValueError, match="Two writers"):
        registry.writer("coco", title="x", extension="x", media_type="x")(lambda meta, images, options: iter(()))


def test_single_document_formats_take_one_file():
    with pytest.raises(FormatError, match="A coco import is one file."):
        registry.get_reader("coco").read([("a.json", b"{}"), ("b.json", b"{}")], None)
