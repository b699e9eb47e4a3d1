"""Review: a queue of submitted images, accept, or reject with a comment the annotator sees."""

import json

import pytest
from django.urls import reverse

from annotator import selectors
from annotator.services import reviews
from annotator.services.annotations import image_submit
from annotator.services.locking import StaleVersion
from annotator.models import Box, Image, Review, Role
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(team):
    """Two annotators and two reviewers; the first three of four images submitted, by annie, annie, bob."""
    bob = team.add_member("bob", Role.ANNOTATOR)
    team.add_member("rev2", Role.REVIEWER)
    team.add_images(4)
    for image_id, user in zip(team.ids[:3], (team.annotator, team.annotator, bob)):
        image = Image.objects.get(pk=image_id)
        Box.objects.create(image=image, label=team.cat, x=10, y=10, w=20, h=20, author=user)
        image_submit(image=image, user=user, version=image.version)
    return team


def _review(client, user, image_id, body):
    client.force_login(user)
    return client.post(reverse("api_image_review", args=[image_id]), json.dumps(body), content_type="application/json")


def _version(image_id):
    return Image.objects.get(pk=image_id).version


def test_the_queue_hands_each_submission_to_one_reviewer_and_resumes_yours(team):
    project, ids = team.project, team.ids
    first = reviews.review_next(project=project, user=team.reviewer)
    assert first.id == ids[0] and first.locked_by == team.reviewer
    assert reviews.review_next(project=project, user=team.reviewer).id == ids[0]  # a reload resumes
    assert reviews.review_next(project=project, user=team.others["rev2"]).id == ids[1]
    assert reviews.review_next(project=project, user=team.others["rev2"], exclude=[ids[1]]).id == ids[2]
    assert reviews.review_next(project=project, user=make_user("third")) is None  # unsubmitted ids[3] never shows


def test_accepting_records_the_verdict_and_releases_the_image(client, team):
    image_id = team.ids[0]
    reviews.review_next(project=team.project, user=team.reviewer)
    response = _review(client, team.reviewer, image_id, {"decision": "accept", "version": _version(image_id)})
    assert response.status_code == 200
    image = Image.objects.get(pk=image_id)
    assert (image.status, image.review_status, image.locked_by) == ("submitted", "accepted", None)
    review = Review.objects.get()
    assert (review.annotator, review.reviewer, review.decision) == (team.annotator, team.reviewer, "accepted")


def test_rejecting_sends_the_image_back_with_the_comment_for_the_annotator(client, team):
    image_id = team.ids[0]
    response = _review(
        client,
        team.reviewer,
        image_id,
        {"decision": "reject", "version": _version(image_id), "comment": "  The cat's box is too loose.  "},
    )
    assert response.status_code == 200
    image = Image.objects.get(pk=image_id)
    assert (image.status, image.review_status) == ("unlabeled", "rejected")
    assert Box.objects.filter(image=image).count() == 1  # the work is kept, to be fixed
    # Back in the annotation queue; the annotate page carries the comment.
    client.force_login(team.annotator)
    page = client.get(reverse("annotate", args=[team.project.id]))
    initial = page.context["initial"]
    assert initial["image"]["id"] == image_id
    assert initial["review"]["comment"] == "The cat's box is too loose." and initial["review"]["reviewer"] == "rev"
    # Submitting again puts it in the review queue afresh, and the note goes away.
    version = initial["image"]["version"]
    client.post(
        reverse("api_image_submit", args=[image_id]), json.dumps({"version": version}), content_type="application/json"
    )
    image.refresh_from_db()
    assert (image.status, image.review_status) == ("submitted", "none")
    assert selectors.annotation_state(image=image)["review"] is None
    assert reviews.review_next(project=team.project, user=team.others["rev2"], exclude=team.ids[1:3]).id == image_id


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"decision": "reject", "comment": "   "}, 400, "needs a comment"),
        ({"decision": "reject", "comment": "x" * 2001}, 400, "at most 2000"),
        ({"decision": "reject", "comment": 5}, 400, "must be text"),
        ({"decision": "maybe"}, 400, "“accept” or “reject”"),
        ({"decision": "accept", "version": 99}, 409, "Someone else changed"),
    ],
)
def test_bad_verdicts_are_refused_and_change_nothing(client, team, body, status, message):
    image_id = team.ids[0]
    response = _review(client, team.reviewer, image_id, {"version": _version(image_id), **body})
    assert response.status_code == status and message in response.json()["error"]
    assert Image.objects.get(pk=image_id).review_status == "none" and not Review.objects.exists()


def test_only_submitted_images_can_be_reviewed(client, team):
    image_id = team.ids[3]
    response = _review(client, team.reviewer, image_id, {"decision": "accept", "version": _version(image_id)})
    assert response.status_code == 400 and "Only submitted images" in response.json()["error"]


def test_accept_rate_per_annotator_is_one_grouped_query(team, django_assert_num_queries):
    ids, rev = team.ids, team.reviewer
    reviews.review_accept(image=Image.objects.get(pk=ids[0]), user=rev, version=_version(ids[0]))
    reviews.review_reject(image=Image.objects.get(pk=ids[1]), user=rev, version=_version(ids[1]), comment="no")
    reviews.review_accept(image=Image.objects.get(pk=ids[2]), user=rev, version=_version(ids[2]))
    with django_assert_num_queries(1):
        stats = selectors.review_stats(project_id=team.project.id)
    assert [(s["annotator"], s["accepted"], s["rejected"], s["accept_rate"]) for s in stats] == [
        ("annie", 1, 1, 0.5),
        ("bob", 1, 0, 1.0),
    ]


def test_the_review_page_shows_the_image_boxes_and_the_project_page_the_rates(client, team):
    project, ids = team.project, team.ids
    client.force_login(team.reviewer)
    page = client.get(reverse("review", args=[project.id]))
    assert page.status_code == 200 and page.context["image"].id == ids[0]
    assert b'class="review-box" style="left:10.000%;top:12.500%;width:20.000%;height:25.000%' in page.content
    assert b'id="review-config"' in page.content
    for image_id in ids[:3]:
        reviews.review_accept(image=Image.objects.get(pk=image_id), user=team.reviewer, version=_version(image_id))
    assert b'id="review-done"' in client.get(reverse("review", args=[project.id])).content
    detail = client.get(reverse("project_detail", args=[project.id]))
    assert b'<tr data-annotator="annie"><td>annie</td><td>2</td><td>0</td><td>100%</td></tr>' in detail.content


def test_a_verdict_on_a_version_another_verdict_moved_on_is_stale_not_invalid(team):
    # The loser of two concurrent verdicts reads the image after the winner's commit (it is then
    # unlabeled again, or accepted): it must get StaleVersion (409, re-read), not "only submitted".
    image_id = team.ids[0]
    seen = _version(image_id)
    reviews.review_reject(image=Image.objects.get(pk=image_id), user=team.reviewer, version=seen, comment="redo")
    with pytest.raises(StaleVersion):
        reviews.review_accept(image=Image.objects.get(pk=image_id), user=team.owner, version=seen)
    assert Review.objects.count() == 1
