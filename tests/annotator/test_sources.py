import zipfile

from annotator.sources import ImageSource, Rejection, sources_from_paths
from tests.factories import image_bytes


def _names(items):
    return [(type(i).__name__, i.name) for i in items]


def test_it_walks_folders_recursively_in_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.png").write_bytes(image_bytes())
    (tmp_path / "b" / "c.jpg").write_bytes(image_bytes(fmt="JPEG"))
    (tmp_path / "notes.txt").write_text("not an image")
    items = list(sources_from_paths([tmp_path], max_bytes=10**6))
    assert _names(items) == [("ImageSource", "a.png"), ("ImageSource", "b/c.jpg")]
    assert items[0].read() == (tmp_path / "a.png").read_bytes()


def test_it_refuses_zip_entries_that_escape(tmp_path):
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok/one.png", image_bytes())
        z.writestr("../evil.png", image_bytes())
        z.writestr("/abs.png", image_bytes())
        z.writestr("readme.txt", "hi")
    items = list(sources_from_paths([archive], max_bytes=10**6))
    assert [i.name for i in items if isinstance(i, ImageSource)] == ["pack.zip/ok/one.png"]
    rejected = {i.name: i.reason for i in items if isinstance(i, Rejection)}
    assert set(rejected) == {"pack.zip/../evil.png", "pack.zip//abs.png"}
    assert all("unsafe path" in reason for reason in rejected.values())
    assert not (tmp_path.parent / "evil.png").exists()


def test_it_refuses_a_zip_bomb_entry(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.png", b"\0" * 20_000_000)
    (item,) = sources_from_paths([archive], max_bytes=50_000_000)
    assert isinstance(item, Rejection) and "zip bomb" in item.reason


def test_it_reports_a_missing_path(tmp_path):
    (item,) = sources_from_paths([tmp_path / "nope"], max_bytes=10)
    assert isinstance(item, Rejection) and item.reason == "no such file or folder"


def test_a_zip_over_the_total_limit_is_refused_whole_before_reading(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"{i}.png", b"\0" * 1000)
    (item,) = sources_from_paths([archive], max_bytes=10**6, max_total=4000)
    assert isinstance(item, Rejection) and item.name == "many.zip" and "inflates to" in item.reason
    assert len(list(sources_from_paths([archive], max_bytes=10**6, max_total=5000))) == 5
