from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "twinlabel.web"
    label = "web"
    verbose_name = "Pages and API"
