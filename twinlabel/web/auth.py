"""Authentication with the failed-login throttle (twinlabel/web/throttle.py): the backend every
password check goes through (login page, Django admin), the login form that says why, and token
authentication for scripts."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from annotator.compiled import Compiled
from twinlabel.web import throttle


class ThrottledModelBackend(ModelBackend):
    def get_user(self, user_id):
        """The logged-in user of every browser request, read by a query compiled once."""
        user = _USER.first(user_id=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def authenticate(self, request, username=None, password=None, **kwargs):
        address = throttle.client_address(request)
        if throttle.login_blocked(username=username, address=address):
            raise PermissionDenied(throttle.throttled_message())  # stops every backend: no password is tried
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttle.login_failed(username=username, address=address)
        elif username:
            throttle.login_succeeded(username=username)
        return user


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username")
        if throttle.login_blocked(username=username, address=throttle.client_address(self.request)):
            raise forms.ValidationError(throttle.throttled_message(), code="throttled")
        return super().clean()


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        throttled = next((e.message for e in form.non_field_errors().as_data() if e.code == "throttled"), None)
        response = self.render_to_response(self.get_context_data(form=form, throttled=throttled))
        if throttled:
            response.status_code = 429
        return response


class ThrottledTokenAuthentication(TokenAuthentication):
    """A wrong token counts as a failed login for the client's address; once the address is over
    the limit, even a right token waits (429), so tokens cannot be guessed at speed."""

    def authenticate(self, request):
        if not request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("token "):
            return None  # no token: the session decides
        address = throttle.client_address(request)
        if throttle.login_blocked(username=None, address=address):
            raise exceptions.Throttled(detail=throttle.throttled_message())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.login_failed(username=None, address=address)
            raise

    def authenticate_credentials(self, key):
        """DRF's check, with the token and its user read by a query compiled once (annotator.compiled):
        this runs on every request a script or the load benchmark makes."""
        token = _TOKEN_WITH_USER.first(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token


def _token_with_user(key: str):
    from rest_framework.authtoken.models import Token  # an app's model: not at import time

    return Token.objects.select_related("user").filter(key=key)[:1]


_TOKEN_WITH_USER = Compiled(_token_with_user, {"key": "str"})
_USER = Compiled(lambda user_id: get_user_model()._default_manager.filter(pk=user_id)[:1], {"user_id": "int"})
