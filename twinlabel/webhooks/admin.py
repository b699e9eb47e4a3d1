from django.contrib import admin

from twinlabel.webhooks import services
from twinlabel.webhooks.models import Webhook, WebhookDelivery


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("id", "event", "status", "attempts", "response_status", "response_ms", "error", "created_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ("-id",)

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "url", "active", "created_at")
    list_filter = ("active",)
    exclude = ("secret",)
    inlines = [DeliveryInline]
    actions = ["send_test_event"]

    @admin.action(description="Send a test event (ping)")
    def send_test_event(self, request, queryset):
        hooks = list(queryset)
        for hook in hooks:
            services.webhook_test(webhook=hook)
        self.message_user(request, f"A ping was queued for {len(hooks)} webhook(s); their deliveries show the answer.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "webhook", "event", "status", "attempts", "response_status", "response_ms", "created_at")
    list_filter = ("status", "event")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields] + ["history"]
