"""Who may do what in a project. Outsiders get 404 (a project's existence is private);
members whose role is too small get 403."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import CharField, OuterRef, Subquery, Value
from django.http import Http404

from annotator.compiled import Compiled
from annotator.models import Membership, Project, Role


def project_for(
    *, user: AbstractBaseUser, project_id: int, roles: tuple[str, ...] | None = None
) -> tuple[Project, str]:
    """The project and the user's role in it, or 404/403. ``roles=None`` admits any member.
    One query: the role rides on the project's row (compiled once: it is on every API request)."""
    if role_lookup(user):
        project = _PROJECT_AS_MEMBER.first(project_id=project_id, user_id=user.pk)
    else:
        project = _PROJECT_AS_NOBODY.first(project_id=project_id)
    if project is None:
        raise Http404("No such project.")
    return project, project_role(user=user, project=project, roles=roles, role=project.member_role)


def role_lookup(user: AbstractBaseUser) -> bool:
    """Whether the user's role comes from a membership row: a superuser needs none, and someone
    not logged in has none."""
    return bool(user.is_authenticated and not user.is_superuser)


def member_role(user_id: int | None, project_field: str) -> Subquery | Value:
    """The role in the project whose id is the outer row's ``project_field`` of the user ``user_id``,
    as an expression to annotate a Project or an Image with (None for a non-member; ``user_id``
    None: nobody's role, see ``role_lookup``)."""
    if user_id is None:
        return Value(None, output_field=CharField())
    return Subquery(
        Membership.objects.filter(project_id=OuterRef(project_field), user_id=user_id).order_by("id").values("role")[:1]
    )


def _project_with_role(project_id: int, user_id: int | None = None):
    return Project.objects.filter(pk=project_id).annotate(member_role=member_role(user_id, "pk"))[:1]


_PROJECT_AS_MEMBER = Compiled(_project_with_role, {"project_id": "int", "user_id": "int"})
_PROJECT_AS_NOBODY = Compiled(_project_with_role, {"project_id": "int"})


_UNREAD = object()


def project_role(
    *, user: AbstractBaseUser, project: Project, roles: tuple[str, ...] | None = None, role=_UNREAD
) -> str:
    """``project_for`` for a project already loaded (e.g. with its image): the role, or 404/403.
    ``role``: the membership's role when the caller read it with the row (``member_role``)."""
    if user.is_superuser:
        return Role.ADMIN
    if role is _UNREAD:
        role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    if role is None:
        raise Http404("No such project.")
    if roles is not None and role not in roles:
        raise PermissionDenied(f"This needs the {' or '.join(roles)} role in “{project.name}”.")
    return role


class LimitReached(ValidationError):
    """A quota or a cap on expensive work is reached (HTTP 429); the message names the setting."""


def project_create_allowed(*, user: AbstractBaseUser) -> None:
    """PROJECT_CREATORS decides who may create projects ("everyone" or "staff"); USER_MAX_PROJECTS
    caps how many one person has created."""
    if settings.PROJECT_CREATORS == "staff" and not (user.is_staff or user.is_superuser):
        raise PermissionDenied(
            "Only staff accounts may create projects on this server (PROJECT_CREATORS=staff); "
            "ask an admin to create one and add you."
        )
    if Project.objects.filter(created_by=user).count() >= settings.USER_MAX_PROJECTS and not user.is_superuser:
        raise LimitReached(
            f"You have created {settings.USER_MAX_PROJECTS} projects, the limit "
            "(USER_MAX_PROJECTS); delete one or ask the server's admin."
        )


ADMIN_ONLY = (Role.ADMIN,)  # settings, labels, members, uploads, training runs, export
ANNOTATE_ROLES = (Role.ADMIN, Role.ANNOTATOR)
REVIEW_ROLES = (Role.ADMIN, Role.REVIEWER)


# What a request without a valid CSRF token is told, by the pages and by the API alike.
CSRF_FAILURE_MESSAGE = (
    "The form or request is missing its CSRF token, or the token is stale: reload the page and try again."
)
