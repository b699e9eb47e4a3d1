"""The members page: admins add people by user name, change roles and remove them; a project keeps an admin."""

import pytest
from django.urls import reverse

from annotator.models import Membership, Role
from tests.factories import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(team, client):
    client.force_login(team.owner)
    return team.project, team.owner, client


def _role(project, username):
    return Membership.objects.filter(project=project, user__username=username).values_list("role", flat=True).first()


def test_it_adds_a_member_by_user_name_and_lists_them(team):
    project, owner, client = team
    make_user("zoe")
    response = client.post(
        reverse("members", args=[project.id]), {"username": " zoe ", "role": "reviewer"}, follow=True
    )
    assert _role(project, "zoe") == Role.REVIEWER
    assert b'data-user="zoe"' in response.content and b'data-user="owner"' in response.content


@pytest.mark.parametrize(
    "username, role, message",
    [
        ("nobody", "annotator", "There is no user called “nobody”"),
        ("owner", "annotator", "already a member"),
        ("zoe", "superuser", "Unknown role “superuser”"),
    ],
)
def test_it_refuses_bad_additions_with_a_message(team, username, role, message):
    project, owner, client = team
    make_user("zoe")
    response = client.post(reverse("members", args=[project.id]), {"username": username, "role": role}, follow=True)
    assert message in response.content.decode()
    assert (
        Membership.objects.filter(project=project).count() == 3 and _role(project, "owner") == Role.ADMIN
    )  # +annie, rev


def test_it_changes_a_role_and_removes_a_member(team):
    project, owner, client = team
    member = add_member(project, make_user("zoe"), Role.ANNOTATOR)
    url = reverse("member_edit", args=[project.id, member.id])
    client.post(url, {"action": "role", "role": "admin"})
    assert _role(project, "zoe") == Role.ADMIN
    client.post(url, {"action": "remove"})
    assert _role(project, "zoe") is None


def test_the_last_admin_can_be_neither_demoted_nor_removed(team):
    project, owner, client = team
    mine = Membership.objects.get(project=project, user=owner)
    url = reverse("member_edit", args=[project.id, mine.id])
    for data in ({"action": "role", "role": "annotator"}, {"action": "remove"}):
        response = client.post(url, data, follow=True)
        assert "at least one admin" in response.content.decode()
        assert _role(project, "owner") == Role.ADMIN
    # With a second admin, the first may step down.
    add_member(project, make_user("zoe"), Role.ADMIN)
    client.post(url, {"action": "role", "role": "reviewer"})
    assert _role(project, "owner") == Role.REVIEWER


def test_a_membership_of_another_project_is_not_reachable(team):
    project, owner, client = team
    other = make_project(owner=make_user("x"), name="Other")
    theirs = Membership.objects.get(project=other)
    response = client.post(reverse("member_edit", args=[project.id, theirs.id]), {"action": "remove"})
    assert response.status_code == 404 and Membership.objects.filter(pk=theirs.pk).exists()
