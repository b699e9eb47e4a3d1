from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "twinlabel.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The site listens to both apps' events (annotator/extensions.py): neither app knows webhooks exist.
        from annotator.extensions import event_listener_register
        from annotator.sweep import register
        from twinlabel.webhooks.services import deliveries_resend, event_noted

        event_listener_register(event_noted)
        register("webhooks", deliveries_resend)
