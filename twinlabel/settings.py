"""Twinlabel's one settings module. Every knob is an environment variable (see .env.example).

With nothing set, Twinlabel runs embedded: SQLite and Celery's filesystem broker under ``var/``.
Point DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at Redis for a team server.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from labeling.ml.presets import COLOUR_STRENGTHS  # pure Python: no torch, no Django
from twinlabel.env import env_bool, env_credentials, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TWINLABEL_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
DATABASE_URL = env_str("DATABASE_URL") or ""
EMBEDDED = not DATABASE_URL  # the single-machine default: SQLite + filesystem broker


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if DEBUG:
        return "insecure-development-key-do-not-use-in-production"
    if EMBEDDED:
        # A single-machine install keeps a generated key beside its database, so the first
        # command just runs and sessions survive restarts. A server deployment must set one.
        path = VAR_DIR / "secret_key"
        if not path.exists():
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(50))
            path.chmod(0o600)
        return path.read_text().strip()
    raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off and DATABASE_URL is set")


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotator",
    "labeling",
    "twinlabel.web",
    "twinlabel.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "twinlabel.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "twinlabel.urls"
WSGI_APPLICATION = "twinlabel.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _databases() -> dict:
    if EMBEDDED:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        db = {"ENGINE": "twinlabel.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
    else:
        try:
            db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
        except ValueError as error:
            raise ImproperlyConfigured(f"DATABASE_URL is not usable: {error}") from None
    if db["ENGINE"] in ("django.db.backends.sqlite3", "twinlabel.backends.sqlite3"):
        # Django's backend plus PRAGMA optimize at close (twinlabel/backends/sqlite3/base.py):
        # without statistics SQLite picked the wrong index once a project grew.
        db["ENGINE"] = "twinlabel.backends.sqlite3"
        # WAL lets the web server read while a worker writes; IMMEDIATE takes the write lock at
        # BEGIN, so two writers queue on the busy timeout instead of failing with "locked".
        # analysis_limit samples each index for ANALYZE: milliseconds at any table size.
        db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA analysis_limit=1000;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # Tests run web and worker processes against the test database, so it must be a file.
        db["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Password hashing: Django's own list (PBKDF2 first, about 0.3 s per hash on a 2-core machine) unless
# PASSWORD_HASHERS names others, first the one new passwords get (e.g. Argon2, with argon2-cffi). The test
# command (`make test`) puts Django's MD5 hasher first, so that each test user costs no 0.3 s: fast and
# weak, for throw-away test accounts only, never on a server.
PASSWORD_HASHERS = env_list("PASSWORD_HASHERS", list(global_settings.PASSWORD_HASHERS))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check (login page, admin) and token goes through the failed-login throttle
# (twinlabel/web/throttle.py): after this many failures in LOGIN_THROTTLE_MINUTES for one user name,
# or from one address, logins wait (429) until the window passes.
AUTHENTICATION_BACKENDS = ["twinlabel.web.auth.ThrottledModelBackend"]
LOGIN_FAILURES_PER_USER = env_int("LOGIN_FAILURES_PER_USER", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_THROTTLE_MINUTES = env_int("LOGIN_THROTTLE_MINUTES", 15, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "media/"  # never served directly: images go through permission-checked views
# Images and thumbnails go through Django's storage API only (default_storage, FieldFile), so they
# can live on S3-compatible storage when workers run on other machines. STORAGE_BACKEND=s3 uses
# django-storages' S3Storage (install boto3 too); the AWS_* variables below configure it, and boto3
# reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment itself.
STORAGE_BACKEND = env_str("STORAGE_BACKEND") or "filesystem"
if STORAGE_BACKEND == "filesystem":
    DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif STORAGE_BACKEND == "s3":
    try:
        import boto3  # noqa: F401  (S3Storage needs it; say so at start, not at the first upload)
    except ImportError as error:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs boto3: pip install boto3") from error
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME") or "",
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),  # MinIO, Ceph, R2 ...: the service's URL
            "region_name": env_str("AWS_S3_REGION_NAME"),
            "location": env_str("AWS_LOCATION") or "",  # a key prefix inside the bucket
            "default_acl": None,  # private objects: the bucket's policy decides
            "file_overwrite": False,
            "querystring_auth": True,  # the image views redirect to short-lived signed URLs
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 300, minimum=10),
        },
    }
    if not DEFAULT_STORAGE["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME")
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND={STORAGE_BACKEND!r}: use filesystem or s3")
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve images by redirecting to the storage's (signed, expiring) URL after the permission check,
# rather than streaming them through a web worker. On by default for S3.
MEDIA_REDIRECT = env_bool("MEDIA_REDIRECT", STORAGE_BACKEND == "s3")
# Origins the pages may show images from besides our own (the Content-Security-Policy's img-src,
# twinlabel/security.py): with MEDIA_REDIRECT the browser loads images from the storage's URLs.
CSP_EXTRA_IMG_SRC = env_list("CSP_EXTRA_IMG_SRC", ["https:"] if MEDIA_REDIRECT else [])
# Bucket import (manage.py import_images PROJECT s3://bucket/prefix, the project page's form):
# the S3 endpoints a project admin may name besides AWS itself (the server connects to them, so an
# admin must not be able to point it at the server's own network: none by default), the credential
# sets a source may name, from BUCKET_CREDENTIALS="name=ACCESS_KEY_ID:SECRET;other=...", never
# stored in the database nor shown back (a source without one uses boto3's chain: AWS_ACCESS_KEY_ID
# ... in the environment), and how many keys one listing page holds (the import's memory bound).
BUCKET_ENDPOINTS = env_list("BUCKET_ENDPOINTS", [])
BUCKET_CREDENTIALS = env_credentials("BUCKET_CREDENTIALS")
BUCKET_LIST_PAGE = env_int("BUCKET_LIST_PAGE", 500, minimum=1)
# Objects read ahead of the import (their GETs in flight at once; their bytes held at most).
BUCKET_READ_AHEAD = env_int("BUCKET_READ_AHEAD", 8, minimum=1)
BUCKET_REPORT_REFUSALS = 100
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "twinlabel.staticfinders.PackageFileFinder",  # plotly.js from the plotly wheel, for the dashboard
]

# Image import limits: what a single upload may weigh and how many pixels it may decode to.
IMAGE_MAX_BYTES = env_int("IMAGE_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 100_000_000, minimum=1)
IMAGE_MAX_SIDE = env_int("IMAGE_MAX_SIDE", 30_000, minimum=1)
# The memory one decode may take, estimated from the header before any pixel is decoded: 400 MB
# admits a 100 MP JPEG or PNG; Pillow's WebP decoder needs 16 bytes a pixel, so WebP up to 25 MP.
IMAGE_DECODE_MAX_MB = env_int("IMAGE_DECODE_MAX_MB", 400, minimum=1)
# A zip (uploaded or imported) may inflate to at most this much in all; each entry also obeys IMAGE_MAX_BYTES.
ZIP_MAX_TOTAL_BYTES = env_int("ZIP_MAX_TOTAL_BYTES", 2 * 1024 * 1024 * 1024, minimum=1)
THUMBNAIL_SIZE = env_int("THUMBNAIL_SIZE", 256, minimum=16)
# How long the queue holds an image for the annotator it was handed to.
QUEUE_LOCK_MINUTES = env_int("QUEUE_LOCK_MINUTES", 10, minimum=1)
# Uploads arrive in batches from the browser (20 files a request); a request may carry at most
# this many files and bytes (a bigger one is a 413 before anything is parsed). Files over 10 MB are
# spooled to disk by Django, not held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("UPLOAD_MAX_FILES_PER_REQUEST", 50, minimum=1)
UPLOAD_MAX_BYTES_PER_REQUEST = env_int("UPLOAD_MAX_BYTES_PER_REQUEST", 1280 * 1024 * 1024, minimum=1)
# Images decoded at once per process (a 100 MP image decodes to 300-400 MB); more wait their turn
# for up to IMAGE_DECODE_WAIT_SECONDS, then the file is refused with "busy, try again".
IMAGE_DECODES_PER_PROCESS = env_int("IMAGE_DECODES_PER_PROCESS", 1, minimum=1)
IMAGE_DECODE_WAIT_SECONDS = env_int("IMAGE_DECODE_WAIT_SECONDS", 120, minimum=1)
# Who may create projects: "everyone" (any account) or "staff"; and how many one person may create.
PROJECT_CREATORS = env_str("PROJECT_CREATORS", "everyone")
if PROJECT_CREATORS not in ("everyone", "staff"):
    raise ImproperlyConfigured(f"PROJECT_CREATORS={PROJECT_CREATORS!r}: use everyone or staff")
USER_MAX_PROJECTS = env_int("USER_MAX_PROJECTS", 100, minimum=1)
# Caps on queued + running training runs: per person (runs they started) and, for pretrainings,
# on the whole server. Automatic probe refits are not counted against anyone.
RUNS_MAX_ACTIVE_PER_USER = env_int("RUNS_MAX_ACTIVE_PER_USER", 2, minimum=1)
PRETRAIN_MAX_ACTIVE = env_int("PRETRAIN_MAX_ACTIVE", 4, minimum=1)
# Failed "add member" look-ups (a user name with no account) one admin may make an hour: adding by
# name tells whether the name exists, so the rate of guesses is bounded.
MEMBER_ADD_MISSES_PER_HOUR = env_int("MEMBER_ADD_MISSES_PER_HOUR", 10, minimum=1)
# Quotas: images in one project, and in all the projects one person created.
PROJECT_MAX_IMAGES = env_int("PROJECT_MAX_IMAGES", 1_000_000, minimum=1)
USER_MAX_IMAGES = env_int("USER_MAX_IMAGES", 5_000_000, minimum=1)

# The REST API (docs/api.md): token auth for scripts (Authorization: Token <key>), the session for
# the browser; errors as {"error": "..."} like the rest of the site.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "twinlabel.web.auth.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "twinlabel.web.api.errors.exception_handler",
    # NaN and Infinity parse, so that the box check can say what is wrong with them.
    "STRICT_JSON": False,
    # ?format= names the export format (coco, voc, ...), not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Twinlabel API",
    "DESCRIPTION": "Projects, images, annotations, suggestions, training runs, imports and exports. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Behind login like the rest of /api/ (session or token): the schema lists every endpoint.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ (Swagger UI) and /api/docs/redoc/ from the sidecar wheel's static files: nothing from a CDN,
    # and no validator badge fetched from swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # deepLinking off: its links sit inside each operation's toggle button (nested controls fail axe).
    # No syntax colouring: its token colours fail WCAG contrast on Swagger's dark code background, and
    # which tokens appear depends on the answer (axe failed on a number in one CI run, not in another).
    "SWAGGER_UI_SETTINGS": {
        "deepLinking": False,
        "persistAuthorization": True,
        "validatorUrl": None,
        "syntaxHighlight": {"activated": False},
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "twinlabel.web.api.errors.schema_errors_hook",
    ],
}
# Exports of more images than this run as a background job that ends as a download.
EXPORT_STREAM_MAX_IMAGES = env_int("EXPORT_STREAM_MAX_IMAGES", 50_000, minimum=1)
# A background export's file is deleted this long after it finished.
EXPORT_KEEP_HOURS = env_int("EXPORT_KEEP_HOURS", 24, minimum=1)

# Celery: Redis when CELERY_BROKER_URL is set, else the filesystem transport under var/.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or f"file://{VAR_DIR / 'results'}"
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
else:
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
# The cache holds the failed-login counts, which every web process must share: Redis on a team
# server (CACHE_URL, default the Redis broker), files under var/cache in the embedded default.
_cache_url = env_str("CACHE_URL") or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "")
# Short socket time-outs: a Redis that is down or hung must cost a request milliseconds, not hang it
# (twinlabel/web/throttle.py then lets logins through rather than answering 500).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _cache_url,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Convention: a task whose name starts with "gpu_" runs on the GPU worker's queue.
CELERY_TASK_ROUTES = {"*.gpu_*": {"queue": "gpu"}}
CELERY_TASK_ALWAYS_EAGER = False
# Tasks defined outside an app's tasks.py (beside the service they run, to keep imports acyclic).
CELERY_IMPORTS = ["annotator.services.bucket_import"]
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long GPU tasks: never hoard work another worker could take
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request sends its task after its transaction committed: with the broker down the send must
# give up in about a second (the sweep sends it again), not hold the request for 19 s.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
        "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
    }
# The sweep in every worker (annotator/sweep.py): every SWEEP_SECONDS it sends queued runs and
# export jobs again that the broker never took, or took SWEEP_RESEND_SECONDS ago and nobody started
# (a broker that restarted empty), re-queues runs, export jobs and bucket imports whose heartbeat is
# older than RUN_STALE_SECONDS (failed after RUN_MAX_ATTEMPTS), and deletes unreferenced media files (MEDIA_GC_GRACE_SECONDS).
# 0 turns it off.
SWEEP_SECONDS = env_int("SWEEP_SECONDS", 30, minimum=0)
SWEEP_RESEND_SECONDS = env_int("SWEEP_RESEND_SECONDS", 300, minimum=5)
# The dashboard's figures that scan a project's rows (suggestions, submissions, tags, attributes,
# reviews) are computed per request below DASHBOARD_LIVE_MAX_IMAGES images; from there on the sweep
# computes them (twinlabel/web/dashboard.py: figures_refresh_due), when they are
# DASHBOARD_REFRESH_SECONDS old and the project changed, or DASHBOARD_MAX_AGE_SECONDS old, and the
# dashboard reads them (it shows when they were computed).
DASHBOARD_LIVE_MAX_IMAGES = env_int("DASHBOARD_LIVE_MAX_IMAGES", 100_000, minimum=0)
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 60, minimum=0)
DASHBOARD_MAX_AGE_SECONDS = env_int("DASHBOARD_MAX_AGE_SECONDS", 900, minimum=0)
# Unreferenced media files older than the grace period are deleted by the sweep at most this often
# (0: never; `manage.py media_gc` lists them, --delete deletes them).
MEDIA_GC_SECONDS = env_int("MEDIA_GC_SECONDS", 3600, minimum=0)
MEDIA_GC_GRACE_SECONDS = env_int("MEDIA_GC_GRACE_SECONDS", 3600, minimum=0)

# Model assistance. Checkpoints, image caches and embeddings live under MODEL_DIR.
MODEL_DIR = Path(env_str("MODEL_DIR") or VAR_DIR / "models")
# A pretraining's defaults are the preset of the worker's device (labeling/ml/presets.py: the CPU
# preset trains for a 10-minute time budget at 32 px, the GPU preset 100 epochs at 64 px).
# PRETRAIN_DEVICE: auto (what the worker reported at start), cpu or gpu.
PRETRAIN_DEVICE = env_str("PRETRAIN_DEVICE", "auto")
if PRETRAIN_DEVICE not in ("auto", "cpu", "gpu"):
    raise ImproperlyConfigured(f"PRETRAIN_DEVICE must be auto, cpu or gpu, not {PRETRAIN_DEVICE!r}")
# Each of these, when set, overrides the preset's value.
PRETRAIN_RESOLUTION = env_int("PRETRAIN_RESOLUTION", 0, minimum=16) if env_str("PRETRAIN_RESOLUTION") else None
PRETRAIN_EPOCHS = env_int("PRETRAIN_EPOCHS", 0, minimum=1) if env_str("PRETRAIN_EPOCHS") else None
PRETRAIN_BATCH_SIZE = env_int("PRETRAIN_BATCH_SIZE", 0, minimum=8) if env_str("PRETRAIN_BATCH_SIZE") else None
PRETRAIN_PROJECTOR = (
    [env_int("PRETRAIN_PROJECTOR_DIM", 0, minimum=16)] * 3 if env_str("PRETRAIN_PROJECTOR_DIM") else None
)
PRETRAIN_TIME_BUDGET_S = env_int("PRETRAIN_TIME_BUDGET_S", 0, minimum=10) if env_str("PRETRAIN_TIME_BUDGET_S") else None
# A pretraining estimated to take longer than this (seconds) starts only when confirmed.
PRETRAIN_CONFIRM_ABOVE_S = env_int("PRETRAIN_CONFIRM_ABOVE_S", 1800, minimum=0)
# The smallest crop (fraction of the image's area) of the two views. 0.5 rather than the paper's
# small crops: image-level multilabel tags depend on every object in the picture, and a small crop
# drops some of them from one view. Measured on the demo scenes (H200, 64 px, 60 epochs, 200
# labels): probe mAP 0.55 with 0.5, 0.38 with 0.2; see bench/results/probe_quality_gpu_*.
PRETRAIN_CROP_MIN = (
    env_float("PRETRAIN_CROP_MIN", 0.5, minimum=0.05, maximum=1.0) if env_str("PRETRAIN_CROP_MIN") else None
)
# The views' colour distortion: a key of labeling.ml.presets.COLOUR_STRENGTHS ("reference", "strong").
PRETRAIN_COLOUR = env_str("PRETRAIN_COLOUR") or None
if PRETRAIN_COLOUR is not None and PRETRAIN_COLOUR not in COLOUR_STRENGTHS:
    raise ImproperlyConfigured(f"PRETRAIN_COLOUR must be one of {', '.join(COLOUR_STRENGTHS)}, not {PRETRAIN_COLOUR!r}")
# GPUs one pretraining run uses on its worker's host: 0 means every GPU the worker sees (one
# DistributedDataParallel process each, global batch statistics; PRETRAIN_BATCH_SIZE is the global
# batch). 1 keeps it to one device. CPU workers always train in one process.
PRETRAIN_GPUS = env_int("PRETRAIN_GPUS", 0, minimum=0)
# torch.compile of a pretraining's step: auto (on a single GPU, when the run is long enough to repay
# the compilation; labeling.ml.presets.should_compile says why), on, or off.
PRETRAIN_COMPILE = env_str("PRETRAIN_COMPILE", "auto")
if PRETRAIN_COMPILE not in ("auto", "on", "off"):
    raise ImproperlyConfigured(f"PRETRAIN_COMPILE must be auto, on or off, not {PRETRAIN_COMPILE!r}")
# Torch threads of a worker process (training, embedding, probe fits on the CPU). Every core the
# process may use but one when the web server runs on the same host (WEB_ON_WORKER_HOST, on by
# default: the embedded default and the one-machine compose file), so the web keeps a core; all of
# them on a host of its own. Measured on 2 busy cores (issue 20): one thread 37-50 images/s, two
# threads 5.5-18 (fighting each other and the web). bin/worker also lowers the worker's CPU and I/O
# priority (WORKER_NICE).
WEB_ON_WORKER_HOST = env_bool("WEB_ON_WORKER_HOST", True)


def default_train_threads(*, cores: int, web_on_host: bool) -> int:
    return max(1, cores - 1) if web_on_host else max(1, cores)


TRAIN_THREADS = env_int(
    "TRAIN_THREADS",
    default_train_threads(cores=len(os.sched_getaffinity(0)), web_on_host=WEB_ON_WORKER_HOST),
    minimum=1,
)
# Embeddings and suggestions are computed in blocks of this many image ids (labeling/data.py, labeling/suggesting.py).
SHARD_IMAGES = env_int("SHARD_IMAGES", 50_000, minimum=1)
# The embedding map's UMAP (umap-learn) beside PCA: at most this many points, computed by the worker
# after each pretraining (minutes on a 2-core CPU; numba compiles it on first use). 0: PCA only.
MAP_UMAP_POINTS = env_int("MAP_UMAP_POINTS", 5000, minimum=0)
# Rows per (project, status) counter, summed on read: more rows, less waiting on one row lock when
# many annotators submit at once.
STATUS_COUNT_SHARDS = env_int("STATUS_COUNT_SHARDS", 16, minimum=1)
# Score the blocks as shard tasks that every worker shares (the last one to write its block
# finishes the run, counted in the database). Off, one worker scores them one after the other; the
# suggestions are the same.
SUGGEST_PARALLEL = env_bool("SUGGEST_PARALLEL", not CELERY_BROKER_URL.startswith("filesystem://"))
# Pretraining uploads the project's image cache to the device when it is at most this big (64 px:
# 12 KiB an image); a bigger one is read batch by batch from its memory map.
PRETRAIN_DATA_ON_DEVICE_MB = env_int("PRETRAIN_DATA_ON_DEVICE_MB", 4096, minimum=0)
# The probe refits by itself after this many new submissions.
PROBE_REFIT_EVERY = env_int("PROBE_REFIT_EVERY", 10, minimum=1)
# The box detector refits by itself after this many new submitted images with boxes.
DETECTOR_REFIT_EVERY = env_int("DETECTOR_REFIT_EVERY", 20, minimum=1)
# When set, from this many submitted images with boxes a detector fit also trains the backbone's top
# stages (fewer: the backbone stays as Barlow Twins left it and only the pyramid and head learn);
# unset: the device's rule (labeling.ml.presets.DETECTOR_RULES: 100 on a CPU, 300 on a GPU).
DETECTOR_FINETUNE_FROM = env_int("DETECTOR_FINETUNE_FROM", 0, minimum=1) if env_str("DETECTOR_FINETUNE_FROM") else None
# When set, from this many submitted images a probe fit also fine-tunes the backbone for the
# suggestions and keeps it when its out-of-fold mAP beats the frozen probe's (0: never); unset: the
# device's rule (labeling.ml.presets.SUGGEST_RULES: from 200 on a CPU, from 100 on a GPU).
SUGGEST_FINETUNE_FROM = env_int("SUGGEST_FINETUNE_FROM", 0, minimum=0) if env_str("SUGGEST_FINETUNE_FROM") else None
# When set, override the device's detector preset (labeling.ml.presets.DETECTOR_PRESETS): the most
# training seconds of a fit (a fit on fewer images gets fewer: DETECTOR_RULES) and its input size
# (px, letterboxed). The CPU preset: at most 600 s at 192 px (AP50 0.53 at 200 boxed demo images on
# one thread, bench/results/box_quality_cpu_n200_finetune2_budget600_threads1_size192.json).
DETECTOR_TIME_BUDGET_S = env_int("DETECTOR_TIME_BUDGET_S", 0, minimum=10) if env_str("DETECTOR_TIME_BUDGET_S") else None
DETECTOR_SIZE = env_int("DETECTOR_SIZE", 0, minimum=64) if env_str("DETECTOR_SIZE") else None
# A detector fit or a pretraining pauses after this many seconds of training (a pretraining at the
# end of that epoch) when other runs are waiting for the worker (a probe refit, say), goes to the
# back of the queue and resumes from its checkpoint: a long run holds suggestions up for about this
# long, not for its whole length. 0: a run trains to its end.
TRAINING_SLICE_S = env_int("TRAINING_SLICE_S", 60, minimum=0)
# A running run whose worker has not been heard of for this long is taken over by another worker.
RUN_STALE_SECONDS = env_int("RUN_STALE_SECONDS", 120, minimum=5)
# Export jobs and bucket imports write their heartbeat at most this often while they work (the sweep
# treats them as runs: quiet for RUN_STALE_SECONDS means their worker is gone).
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 10, minimum=1)
# A run whose worker went quiet this many times (claims) is failed with a message, not queued again.
RUN_MAX_ATTEMPTS = env_int("RUN_MAX_ATTEMPTS", 3, minimum=1)
# Long training must not be cut by a global limit; each task sets its own.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True

# Security: secure cookies and HSTS once the site is served over HTTPS.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS and env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = HTTPS and env_bool("SECURE_HSTS_PRELOAD", False)
# Only trusted when the TLS-terminating proxy in front sets it (and strips it from clients).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_ENGINE = "twinlabel.sessions"  # the database backend, its hot read compiled once
# Pages hand the CSRF token to scripts in a <meta> tag, so no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# JSON endpoints answer a CSRF failure in JSON, like every other error they return.
CSRF_FAILURE_VIEW = "twinlabel.web.pages.site.csrf_failure"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}

# Webhooks (twinlabel/webhooks/): attempts per delivery, the back-off (doubled after each failure, capped),
# the time-out of one POST, and whether URLs may point at loopback or private addresses (tests, a
# receiver on the same machine); off by default so a webhook cannot reach into the server's network.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_RETRY_BASE_S = env_float("WEBHOOK_RETRY_BASE_S", 2.0, minimum=0, maximum=3600)
WEBHOOK_RETRY_MAX_S = env_float("WEBHOOK_RETRY_MAX_S", 600.0, minimum=0, maximum=86400)
WEBHOOK_TIMEOUT_S = env_float("WEBHOOK_TIMEOUT_S", 5.0, minimum=0.1, maximum=60)
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
