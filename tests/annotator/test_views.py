"""Pages and upload: each endpoint with the project's owner, a member with too small a role, and an outsider."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotator.models import Image, LabelClass
from tests.factories import add_images, image_bytes, make_user

pytestmark = pytest.mark.django_db


def _as(client, user):
    client.force_login(user)
    return client


def test_pages_need_a_login(client, team):
    project = team.project
    for url in (
        reverse("project_list"),
        reverse("project_detail", args=[project.id]),
        reverse("image_grid", args=[project.id]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_project_page_shows_members_their_project_and_hides_it_from_outsiders(client, team):
    project, owner, annotator, outsider = team.project, team.owner, team.annotator, team.outsider
    add_images(project, 3)
    page = _as(client, owner).get(reverse("project_detail", args=[project.id]))
    assert page.status_code == 200
    assert b'data-count="total">3<' in page.content and b'id="dropzone"' in page.content
    page = _as(client, annotator).get(reverse("project_detail", args=[project.id]))
    assert page.status_code == 200 and b'id="dropzone"' not in page.content  # annotators don't upload
    assert _as(client, outsider).get(reverse("project_detail", args=[project.id])).status_code == 404
    assert project.name.encode() not in _as(client, outsider).get(reverse("project_list")).content


def test_upload_imports_for_admins_only(client, team):
    project, owner, annotator, outsider = team.project, team.owner, team.annotator, team.outsider
    url = reverse("api_project_images", args=[project.id])  # the browser uploads through the API

    def upload(user, *files):
        return _as(client, user).post(url, {"files": list(files)})

    good = SimpleUploadedFile("a.png", image_bytes(), content_type="image/png")
    bad = SimpleUploadedFile("b.png", b"not really", content_type="image/png")
    response = upload(owner, good, bad)
    assert response.status_code == 200
    body = response.json()
    assert [i["name"] for i in body["imported"]] == ["a.png"]
    assert body["rejected"][0]["name"] == "b.png" and "not an image" in body["rejected"][0]["reason"]
    good.seek(0)
    assert upload(annotator, good).status_code == 403
    good.seek(0)
    assert upload(outsider, good).status_code == 404
    assert Image.objects.count() == 1
    assert _as(client, owner).post(url, {}).json()["error"].startswith("Choose one or more")


def test_the_grid_pages_by_keyset_and_filters_by_status(client, team):
    project, annotator = team.project, team.annotator
    ids = add_images(project, 130)
    Image.objects.filter(pk__in=ids[:5]).update(status="skipped")
    client = _as(client, annotator)
    url = reverse("image_grid", args=[project.id])
    first = client.get(url)
    shown = first.context["page"]
    assert [i.id for i in shown.images] == ids[:60] and shown.next_after == ids[59] and shown.prev_before is None
    second = client.get(url, {"after": shown.next_after}).context["page"]
    assert [i.id for i in second.images] == ids[60:120] and second.prev_before == ids[60]
    last = client.get(url, {"after": second.next_after}).context["page"]
    assert [i.id for i in last.images] == ids[120:] and last.next_after is None
    back = client.get(url, {"before": second.prev_before}).context["page"]
    assert [i.id for i in back.images] == ids[:60] and back.prev_before is None
    skipped = client.get(url, {"status": "skipped"}).context["page"]
    assert [i.id for i in skipped.images] == ids[:5]
    assert client.get(url, {"status": "nonsense"}).status_code == 404
    assert client.get(url, {"after": "1 OR 1=1"}).status_code == 404


def test_the_grid_query_count_does_not_grow_with_the_page(client, team, django_assert_max_num_queries):
    project, owner = team.project, team.owner
    add_images(project, 60)
    client = _as(client, owner)
    with django_assert_max_num_queries(6):  # session, user, project, membership, page
        client.get(reverse("image_grid", args=[project.id]))


def test_image_files_are_served_to_members_only(client, team):
    project, annotator, outsider = team.project, team.annotator, team.outsider
    (image_id,) = add_images(project, 1)
    for name in ("image_file", "image_thumbnail"):
        url = reverse(name, args=[image_id])
        response = _as(client, annotator).get(url)
        assert response.status_code == 200 and b"".join(response.streaming_content)[:4] in (
            b"\x89PNG",
            b"\xff\xd8\xff\xe0",
        )
        assert _as(client, outsider).get(url).status_code == 404


def test_with_media_redirect_members_get_the_storage_url_and_outsiders_nothing(client, team, settings):
    """For S3 (signed, expiring URLs) the views check permission, then redirect to storage.url."""
    settings.MEDIA_REDIRECT = True
    project, annotator, outsider = team.project, team.annotator, team.outsider
    (image_id,) = add_images(project, 1)
    image = Image.objects.get(pk=image_id)
    for name, stored in (("image_file", image.file), ("image_thumbnail", image.thumbnail)):
        url = reverse(name, args=[image_id])
        response = _as(client, annotator).get(url)
        assert response.status_code == 302 and response["Location"] == stored.url
        assert _as(client, outsider).get(url).status_code == 404


def test_the_label_editor_adds_renames_and_refuses_bad_labels(client, team):
    project, owner, annotator = team.project, team.owner, team.annotator
    client = _as(client, owner)
    client.post(reverse("label_add", args=[project.id]), {"name": "bird", "color": "#123456", "hotkey": ""})
    bird = LabelClass.objects.get(project=project, name="bird")
    assert bird.hotkey == "3"  # the next free digit
    response = client.post(reverse("label_add", args=[project.id]), {"name": "Cat", "color": "#123456"}, follow=True)
    assert "already a label called" in response.content.decode()
    response = client.post(
        reverse("label_edit", args=[project.id, bird.id]),
        {"name": "parrot", "color": "#abcdef", "hotkey": "f"},
        follow=True,
    )
    assert "taken by the annotator" in response.content.decode()
    client.post(
        reverse("label_edit", args=[project.id, bird.id]), {"name": "parrot", "color": "#abcdef", "hotkey": "p"}
    )
    bird.refresh_from_db()
    assert (bird.name, bird.color, bird.hotkey) == ("parrot", "#abcdef", "p")
    assert _as(client, annotator).post(reverse("label_add", args=[project.id]), {"name": "x"}).status_code == 403


def test_a_label_in_use_is_not_deleted(client, team):
    project, owner = team.project, team.owner
    (image_id,) = add_images(project, 1)
    cat = project.labels.get(name="cat")
    Image.objects.get(pk=image_id).boxes.create(label=cat, x=1, y=1, w=3, h=3)
    client = _as(client, owner)
    response = client.post(reverse("label_edit", args=[project.id, cat.id]), {"action": "delete"}, follow=True)
    assert "is used by 1 boxes" in response.content.decode()
    assert LabelClass.objects.filter(pk=cat.id).exists()
    dog = project.labels.get(name="dog")
    client.post(reverse("label_edit", args=[project.id, dog.id]), {"action": "delete"})
    assert not LabelClass.objects.filter(pk=dog.id).exists()


def test_creating_a_project_makes_its_creator_admin(client):
    user = make_user("lead")
    response = _as(client, user).post(reverse("project_list"), {"name": "Cars", "labels": "car, truck ,bus"})
    project = user.memberships.get().project
    assert response["Location"] == reverse("project_detail", args=[project.id])
    assert list(project.labels.values_list("name", "hotkey")) == [("car", "1"), ("truck", "2"), ("bus", "3")]


def test_healthz_answers_without_login(client):
    assert client.get(reverse("healthz")).json()["ok"] is True
