from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "twinlabel.web"
    label = "web"
    verbose_name = "Pages and API"

    def ready(self) -> None:
        from annotator.sweep import register
        from twinlabel.web.dashboard import figures_refresh_due

        # A big project's dashboard figures, computed by the worker instead of the request.
        register("dashboard_figures", figures_refresh_due)
