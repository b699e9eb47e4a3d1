"""Races between annotators, with real threads and real transactions (PostgreSQL in CI)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from annotator.services.annotations import annotation_save, image_submit
from annotator.services.queue import queue_next
from annotator.models import Box, Image
from annotator.services.annotations import BoxIn
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _in_threads(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together; collect results or exceptions."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as error:  # the caller inspects what each thread got
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_saves_of_the_same_version_one_wins_one_gets_409():
    owner = make_user("owner")
    project = make_project(owner=owner)
    other = make_user("other")
    add_member(project, other)
    (image_id,) = add_images(project, 1)
    label = project.labels.first()
    users = [owner, other]

    def save(i: int):
        image = Image.objects.select_related("project").get(pk=image_id)
        annotation_save(
            image=image, user=users[i], version=1, boxes=[BoxIn(label.id, 10 * i, 0, 5, 5)], tag_label_ids=[]
        )
        return "saved"

    results = _in_threads(2, save)
    assert sorted(type(r).__name__ if isinstance(r, Exception) else r for r in results) == ["StaleVersion", "saved"]
    winner = results.index("saved")
    boxes = list(Box.objects.filter(image_id=image_id).values_list("x", "author_id"))
    assert boxes == [(10.0 * winner, users[winner].id)]  # the winner's work, whole; nothing mixed in
    assert Image.objects.get(pk=image_id).version == 2


def test_the_queue_never_hands_one_image_to_two_annotators(need):
    owner = make_user("owner")
    project = make_project(owner=owner)
    people = [owner] + [make_user(f"a{i}") for i in range(5)]
    for person in people[1:]:
        add_member(project, person)
    add_images(project, 12)

    def take(i: int):
        return [queue_next(project=project, user=people[i], exclude=[]).id]

    results = _in_threads(len(people), take)
    handed = [r[0] for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [] and len(handed) == len(people)
    assert len(set(handed)) == len(handed), f"an image was handed out twice: {handed} ({connection.vendor})"
    held = dict(Image.objects.filter(locked_by__isnull=False).values_list("id", "locked_by_id"))
    assert {held[i] for i in handed} == {p.id for p in people}


def test_the_review_queue_never_hands_one_submission_to_two_reviewers():
    from annotator.services import reviews
    from annotator.models import Role

    owner = make_user("owner")
    project = make_project(owner=owner)
    people = [owner] + [make_user(f"r{i}") for i in range(5)]
    for person in people[1:]:
        add_member(project, person, Role.REVIEWER)
    ids = add_images(project, 10)
    for image_id in ids:
        image = Image.objects.get(pk=image_id)
        image_submit(image=image, user=owner, version=image.version)

    results = _in_threads(len(people), lambda i: reviews.review_next(project=project, user=people[i]).id)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == len(people), f"a submission was handed out twice: {results} ({connection.vendor})"


def test_two_verdicts_on_one_submission_one_lands_one_gets_409():
    from annotator.services import reviews
    from annotator.models import Review

    owner, other = make_user("owner"), make_user("other")
    project = make_project(owner=owner)
    add_member(project, other, "reviewer")
    (image_id,) = add_images(project, 1)
    image = Image.objects.get(pk=image_id)
    image_submit(image=image, user=owner, version=1)

    def decide(i: int):
        image = Image.objects.get(pk=image_id)
        if i == 0:
            reviews.review_accept(image=image, user=owner, version=2)
        else:
            reviews.review_reject(image=image, user=other, version=2, comment="redo")
        return "decided"

    results = _in_threads(2, decide)
    assert sorted(type(r).__name__ if isinstance(r, Exception) else r for r in results) == ["StaleVersion", "decided"]
    assert Review.objects.count() == 1  # the loser's verdict left no row behind
