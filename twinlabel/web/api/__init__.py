"""The REST API (Django REST Framework), docs/api.md. Views are thin: they check access with
annotator/access.py, call one service or selector, and answer. The annotate page and the project
page use these same endpoints."""
