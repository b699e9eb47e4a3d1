"""Your account: change the password (which revokes your API token), and create, rotate or revoke
the token scripts use (``Authorization: Token <key>``). The new key is shown once."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token


def token_rotate(*, user: AbstractBaseUser) -> Token:
    """A new key for the user's token; the old key stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def token_revoke(*, user: AbstractBaseUser) -> None:
    Token.objects.filter(user=user).delete()


def password_change(*, form: PasswordChangeForm) -> AbstractBaseUser:
    """Save the new password and revoke the API token: whoever had the old password may have had it."""
    with transaction.atomic():
        user = form.save()
        token_revoke(user=user)
    return user


@login_required
def account(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = password_change(form=form)
        update_session_auth_hash(request, user)  # this browser stays logged in; other sessions end
        messages.success(request, "Your password was changed. Your API token was revoked: create a new one below.")
        return redirect("account")
    return render(
        request,
        "web/account.html",
        {
            "form": form,
            "has_token": Token.objects.filter(user=request.user).exists(),
            "new_key": request.session.pop("new_token_key", None),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def account_token(request: HttpRequest) -> HttpResponse:
    if request.POST.get("action") == "revoke":
        token_revoke(user=request.user)
        messages.success(request, "Your API token was revoked.")
    else:
        # Shown once, on the next page (kept in the session rather than the URL or a message).
        request.session["new_token_key"] = token_rotate(user=request.user).key
    return redirect("account")
