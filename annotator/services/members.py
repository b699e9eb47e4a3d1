"""Members: admins add people by user name, change roles and remove them; a project keeps an admin."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotator.models import Membership, Project, Role


def member_add(*, project: Project, username: str, role: str, by: AbstractBaseUser | None = None) -> Membership:
    """Add an account by its user name. Whether a name exists shows in the answer, so the names
    with no (active) account that one admin (``by``) tries are limited to MEMBER_ADD_MISSES_PER_HOUR."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from annotator.access import LimitReached

    _role_check(role)
    misses_key = f"member-add-misses:{by.pk if by is not None else 0}"
    if by is not None and cache.get(misses_key, 0) >= settings.MEMBER_ADD_MISSES_PER_HOUR:
        raise LimitReached(
            f"You tried {settings.MEMBER_ADD_MISSES_PER_HOUR} user names without an account in the "
            "last hour (MEMBER_ADD_MISSES_PER_HOUR); ask the person for their exact user name and "
            "try again later."
        )
    user = get_user_model().objects.filter(username=username.strip(), is_active=True).first()
    if user is None:
        if by is not None and not cache.add(misses_key, 1, 3600):
            cache.incr(misses_key)
        # The same answer for a name with no account and for a disabled account.
        raise ValidationError(f"There is no user called “{username.strip()}”; they need an account first.")
    membership, created = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created:
        raise ValidationError(
            f"{user.get_username()} is already a member ({membership.role}); change their role instead."
        )
    return membership


def member_set_role(*, membership: Membership, role: str) -> Membership:
    _role_check(role)
    with transaction.atomic():
        if role != Role.ADMIN:
            _keep_an_admin(membership)
        Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    return membership


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        _keep_an_admin(membership)
        membership.delete()


def _role_check(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(f"Unknown role “{role}”; use one of {', '.join(Role.values)}.")


def _keep_an_admin(membership: Membership) -> None:
    # The admins' rows are locked, so two admins demoting each other at once cannot both succeed.
    admins = list(
        Membership.objects.select_for_update()
        .filter(project_id=membership.project_id, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins == [membership.pk]:
        raise ValidationError("A project needs at least one admin: make someone else admin first.")
