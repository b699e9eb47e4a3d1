import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinlabel.settings")
application = get_wsgi_application()
# Import every view now, as each web worker starts, not in its first request: the URLconf and the
# modules it reaches took 0.24 s on this 2-core machine, paid by whoever asked first (bench/load.py's
# annotators all start at once, and their first requests were its p99).
get_resolver().url_patterns
