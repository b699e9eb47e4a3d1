"""Webhooks: a project's admins register URLs for its events, list them with their recent
deliveries, remove them and send a test event (twinlabel/webhooks/, docs/api.md)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.extensions import EVENTS
from twinlabel.web.api import common
from twinlabel.webhooks import services
from twinlabel.webhooks.models import Webhook, WebhookDelivery


class WebhookInSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), min_length=1)
    secret = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="At least 16 characters; made for you when left out"
    )


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="Shown once: verify X-Twinlabel-Signature with it")


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    response_ms = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    history = serializers.ListField(child=serializers.DictField())


def _hook(hook: Webhook, *, secret: bool = False) -> dict:
    out = {"id": hook.id, "url": hook.url, "events": hook.events, "active": hook.active, "created_at": hook.created_at}
    return {**out, "secret": hook.secret} if secret else out


def _delivery(d: WebhookDelivery) -> dict:
    return {f: getattr(d, f) for f in DeliverySerializer().fields}


@extend_schema(methods=["GET"], responses=WebhookSerializer(many=True))
@extend_schema(methods=["POST"], request=WebhookInSerializer, responses={201: WebhookCreatedSerializer})
@api_view(["GET", "POST"])
def project_webhooks(request: Request, project_id: int) -> Response:
    """GET: the project's webhooks. POST {url, events, secret?}: register one (admin); the answer
    carries the secret, once. Loopback and private addresses are refused unless WEBHOOKS_ALLOW_PRIVATE."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.method == "GET":
        return Response([_hook(h) for h in Webhook.objects.filter(project=project)])
    form = WebhookInSerializer(data=common.body(request))
    form.is_valid(raise_exception=True)
    hook = services.webhook_create(project=project, user=request.user, **form.validated_data)
    return Response(_hook(hook, secret=True), status=201)


def _webhook_for(request: Request, webhook_id: int) -> Webhook:
    hook = get_object_or_404(Webhook, pk=webhook_id)
    project_for(user=request.user, project_id=hook.project_id, roles=ADMIN_ONLY)
    return hook


@extend_schema(request=None, responses={204: None})
@api_view(["DELETE"])
def webhook_detail(request: Request, webhook_id: int) -> Response:
    """Remove a webhook and its delivery log (admin)."""
    _webhook_for(request, webhook_id).delete()
    return Response(status=204)


@extend_schema(request=None, responses={202: DeliverySerializer})
@api_view(["POST"])
def webhook_test(request: Request, webhook_id: int) -> Response:
    """Send a ``ping`` event now; poll the deliveries to see what the receiver answered."""
    return Response(_delivery(services.webhook_test(webhook=_webhook_for(request, webhook_id))), status=202)


@extend_schema(responses=DeliverySerializer(many=True))
@api_view(["GET"])
def webhook_deliveries(request: Request, webhook_id: int) -> Response:
    """The newest 100 deliveries: status, attempts, the receiver's answer and its time."""
    hook = _webhook_for(request, webhook_id)
    return Response([_delivery(d) for d in WebhookDelivery.objects.filter(webhook=hook).order_by("-id")[:100]])
