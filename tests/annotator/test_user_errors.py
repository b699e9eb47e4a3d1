"""Issue 14, item 11: every input that answered 500 answers a 4xx that says what to fix, one test
per case; and label names compare one way (NFKC + casefold) in Python and in the database."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError
from django.urls import reverse

from annotator.models import Box, Image, LabelClass, Project, label_key
from annotator.services import annotations as annotation_services
from annotator.services import labels as label_services
from annotator.services.labels import label_create
from tests.factories import add_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, team):
    client.force_login(team.owner)
    client.project = team.project
    client.owner = team.owner
    return client


@pytest.fixture
def race_with_same_name(monkeypatch):
    """Another request creates the same label between this one's check and its insert: the check
    passes, then the row appears, as with two admins (or two imports) at once."""
    real = label_services._label_validate

    def validate_then_lose_the_race(label):
        real(label)
        LabelClass.objects.bulk_create(
            [LabelClass(project_id=label.project_id, name=label.name, name_key=label_key(label.name), order=99)]
        )

    monkeypatch.setattr(label_services, "_label_validate", validate_then_lose_the_race)


def _one_box_coco(file_name: str, category: str, bbox=(1, 1, 5, 5)) -> dict:
    """A COCO file with one 32 x 32 image, one category and one box of it."""
    return {
        "images": [{"id": 1, "file_name": file_name, "width": 32, "height": 32}],
        "categories": [{"id": 1, "name": category}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": list(bbox)}],
    }


def _import(client, fmt, name, data):
    return client.post(
        reverse("api_project_import", args=[client.project.id]),
        {"format": fmt, "files": [SimpleUploadedFile(name, data)]},
    )


def test_two_admins_creating_the_same_label_at_once_get_a_400(owner_client, race_with_same_name):
    response = owner_client.post(
        reverse("api_project_labels", args=[owner_client.project.id]), {"name": "bird"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "was just created by someone else" in response.json()["error"]


def test_the_same_coco_imported_twice_at_once_gets_a_400(owner_client, race_with_same_name):
    add_images(owner_client.project, 1)
    name = Image.objects.get().original_name
    coco = _one_box_coco(name, "bird")
    response = _import(owner_client, "coco", "c.json", json.dumps(coco).encode())
    assert response.status_code == 400
    assert "was just created by someone else" in response.json()["error"]
    assert Box.objects.count() == 0


@pytest.mark.django_db(transaction=True)  # the foreign key is checked at the real commit
def test_a_label_deleted_while_boxes_with_it_are_saved_is_a_400(owner_client, monkeypatch):
    (image_id,) = add_images(owner_client.project, 1)
    bird = label_create(project=owner_client.project, name="bird")
    real = annotation_services._rows_and_before  # what annotation_save checks the labels with

    def validated_then_label_deleted(*args):
        result = real(*args)
        LabelClass.objects.filter(pk=bird.pk).delete()  # an admin deletes it meanwhile (no boxes yet)
        return result

    monkeypatch.setattr(annotation_services, "_rows_and_before", validated_then_label_deleted)
    response = owner_client.put(
        reverse("api_image_annotations", args=[image_id]),
        {"version": 1, "boxes": [{"label": bird.id, "x": 1, "y": 1, "w": 5, "h": 5}]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert f"[{bird.id}] were deleted meanwhile" in response.json()["error"]
    assert Box.objects.count() == 0 and Image.objects.get(pk=image_id).version == 1


@pytest.mark.parametrize(
    "fmt, name", [("coco", "deep.json"), ("json", "deep.json"), ("labelstudio", "deep.json"), ("yolo", "data.yaml")]
)
def test_an_import_file_nested_100k_deep_is_a_400(owner_client, fmt, name):
    deep = b"[" * 100_000 + b"]" * 100_000
    files = {"files": [SimpleUploadedFile(name, deep)]}
    if fmt == "yolo":
        files["files"].append(SimpleUploadedFile("a.txt", b"0 0.5 0.5 0.1 0.1\n"))
    response = owner_client.post(
        reverse("api_project_import", args=[owner_client.project.id]), {"format": fmt, **files}
    )
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("bad_id", [{}, [1]])
@pytest.mark.parametrize("where", ["image", "category", "annotation.image_id", "annotation.category_id"])
def test_coco_ids_that_are_objects_or_lists_are_a_400(owner_client, bad_id, where):
    coco = _one_box_coco("a.png", "cat", bbox=(1, 1, 2, 2))
    if where == "image":
        coco["images"][0]["id"] = bad_id
    elif where == "category":
        coco["categories"][0]["id"] = bad_id
    else:
        coco["annotations"][0][where.split(".")[1]] = bad_id
    response = _import(owner_client, "coco", "c.json", json.dumps(coco).encode())
    assert response.status_code == 400
    assert "COCO" in response.json()["error"] or "category" in response.json()["error"]


@pytest.mark.parametrize(
    "results, message",
    [
        (["oops"], "each result must be an object"),
        ([{"type": "choices", "value": {"choices": [1]}}], "“choices” must be a list of label names"),
        (
            [{"type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 2, "height": 2, "rectanglelabels": [{}]}}],
            "“rectanglelabels” must be a list of label names",
        ),
        ("oops", "“result” must be a list"),
    ],
)
def test_label_studio_results_of_the_wrong_type_are_a_400(owner_client, results, message):
    tasks = [{"data": {"image": "/data/upload/1/a.png"}, "annotations": [{"result": results}]}]
    response = _import(owner_client, "labelstudio", "ls.json", json.dumps(tasks).encode())
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_deeply_nested_json_body_on_put_annotations_is_a_400(owner_client):
    (image_id,) = add_images(owner_client.project, 1)
    body = '{"version": 1, "boxes": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = owner_client.put(
        reverse("api_image_annotations", args=[image_id]), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "too deeply" in response.json()["error"]


def test_a_cursor_of_1e400_is_a_400(owner_client):
    cursor = base64.urlsafe_b64encode(b"[1e400]").decode()
    response = owner_client.get(reverse("api_project_images", args=[owner_client.project.id]), {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["error"]


def _page_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_label_colour_with_a_trailing_newline_in_the_page_form_is_refused(owner_client):
    response = owner_client.post(
        reverse("label_add", args=[owner_client.project.id]), {"name": "bird", "color": "#00ff00\n"}
    )
    assert response.status_code == 302
    assert _page_messages(response) == ["Use a colour like #1f77b4."]
    assert not LabelClass.objects.filter(name="bird").exists()


@pytest.mark.parametrize("name, message", [("x" * 201, "at most 200 characters"), ("bad\x00name", "NUL")])
def test_a_page_form_project_name_too_long_or_with_nul_is_refused(owner_client, name, message):
    before = Project.objects.count()
    response = owner_client.post(reverse("project_list"), {"name": name, "labels": "a,b"})
    assert response.status_code == 302
    assert any(message in m for m in _page_messages(response))
    assert Project.objects.count() == before


def test_label_dotted_capital_i_after_i_is_answered_the_same_way_in_python_and_the_database(owner_client):
    url = reverse("api_project_labels", args=[owner_client.project.id])
    assert owner_client.post(url, {"name": "i"}, content_type="application/json").status_code == 201
    # "İ" casefolds to "i̇" (i + combining dot), not "i": a different label, and the database agrees.
    response = owner_client.post(url, {"name": "İ"}, content_type="application/json")
    assert response.status_code == 201
    again = owner_client.post(url, {"name": "i̇"}, content_type="application/json")  # its own key, typed
    assert again.status_code == 400 and "already a label" in again.json()["error"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("cat\u200b", "invisible or control characters"),  # cat + zero-width space
        ("\u200dcat", "invisible or control characters"),  # zero-width joiner
        ("ｃａｔ", "“cat” rather than “ｃａｔ”"),  # fullwidth letters
        ("ﬁsh", "“fish” rather than “ﬁsh”"),  # a ligature
    ],
)
def test_look_alike_label_names_are_refused(owner_client, name, message):
    response = owner_client.post(
        reverse("api_project_labels", args=[owner_client.project.id]), {"name": name}, content_type="application/json"
    )
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_label_names_compare_by_casefold_so_german_sharp_s_matches(owner_client):
    label_create(project=owner_client.project, name="Straße")
    with pytest.raises(ValidationError, match="already a label"):
        label_create(project=owner_client.project, name="STRASSE")


def test_the_database_refuses_two_names_with_one_key(owner_client):
    with pytest.raises(IntegrityError):
        LabelClass.objects.create(project=owner_client.project, name="CAT")  # save() sets the key: "cat"


def test_a_coco_import_matches_existing_labels_by_the_same_key(owner_client):
    add_images(owner_client.project, 1)
    name = Image.objects.get().original_name
    coco = _one_box_coco(name, "CAT")
    response = _import(owner_client, "coco", "c.json", json.dumps(coco).encode())
    assert response.status_code == 200, response.content
    assert response.json()["labels_created"] == []
    assert Box.objects.get().label.name == "cat"


def test_the_image_list_filters_by_exact_file_name(owner_client):
    from annotator.services.images import images_import
    from annotator.sources import ImageSource
    from tests.factories import image_bytes

    report = images_import(
        project=owner_client.project,
        sources=[
            ImageSource(n, lambda i=i: image_bytes(color=(i, 1, 1))) for i, n in enumerate(["a.png", "b.png", "ab.png"])
        ],
    )
    ids = {i.name: i.image_id for i in report.imported}
    response = owner_client.get(reverse("api_project_images", args=[owner_client.project.id]), {"name": "b.png"})
    assert [r["id"] for r in response.json()["results"]] == [ids["b.png"]]


def test_label_studio_unmatched_files_are_reported_by_their_bare_name(owner_client):
    tasks = [{"data": {"image": "/data/upload/3/9f9f9f9f-missing.png"}, "annotations": [{"result": []}]}]
    response = _import(owner_client, "labelstudio", "ls.json", json.dumps(tasks).encode())
    assert response.status_code == 200, response.content
    assert response.json()["unmatched"] == ["missing.png"]
