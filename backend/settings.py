"""Chorus settings: every value comes from the environment (see docker/.env.example).

With nothing set, Chorus runs on an embedded PostgreSQL, executes Celery jobs eagerly in
process and uses in-memory caches and channel layers. Setting DATABASE_URL, REDIS_URL and
INFERENCE_URL turns the same code into a horizontally scalable deployment.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str(
    "SECRET_KEY",
    # Only good for a local checkout; production sets SECRET_KEY (check --deploy flags it).
    default="django-insecure-chorus-local-development-key-change-me",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# OAuth sign-in, switched on per provider: CHORUS_OAUTH_PROVIDERS=github,discord with
# <PROVIDER>_CLIENT_ID and <PROVIDER>_CLIENT_SECRET for each.
_OAUTH_PROVIDERS = env.list("CHORUS_OAUTH_PROVIDERS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally: no CDN at run time
    "backend.core",
    "backend.accounts",
    "backend.trees",
    "backend.tasks",
    "backend.moderation",
    "backend.exports",
    "backend.community",
    "backend.assistant",
    # Before allauth: its templates (layout, form elements) are overridden in frontend/.
    "frontend",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    *(f"allauth.socialaccount.providers.{name}" for name in _OAUTH_PROVIDERS),
]

MIDDLEWARE = [
    # /healthz and /readyz answer first: before the host check (probes ask by IP address),
    # HTTPS redirects, sessions, CSRF and rate limits (backend/core/health.py).
    "backend.core.health.HealthCheckMiddleware",
    # Next: the access log and request metrics see every other answer, static files too.
    "backend.core.monitoring.RequestMonitoringMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "backend.core.csp.ChorusCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "backend.core.middleware.QueryCountMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in volunteer's chosen UI language wins over the browser's.
    "frontend.middleware.UserLanguageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Django's empty 405 for a form's address opened in the browser becomes a page.
    "frontend.middleware.MethodNotAllowedMiddleware",
    # Last: refuses a page's form post over its rate limit before its view runs.
    "frontend.middleware.RateLimitMiddleware",
]

ROOT_URLCONF = "backend.urls"
ASGI_APPLICATION = "backend.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
                "django.template.context_processors.i18n",
                "frontend.context.chorus",
            ],
        },
    },
]


def _database() -> dict:
    url = env.str("DATABASE_URL", default="")
    if not url:
        from backend.core.embedded_db import embedded_database_url

        url = embedded_database_url()
    config = environ.Env.db_url_config(url)
    config["ENGINE"] = "django.db.backends.postgresql"
    # Under ASGI every request may run its sync code on another thread, so per-thread
    # persistent connections pile up; psycopg's pool shares a few connections instead.
    pool_max = env.int("DATABASE_POOL_MAX", default=8)
    config["CONN_MAX_AGE"] = 0
    # Keep what the URL put in OPTIONS (the embedded server's socket folder is "host" there).
    config.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": pool_max, "timeout": 10}
    if env.str("DATABASE_TEST_NAME", default=""):
        config["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME")}
    return config


DATABASES = {"default": _database()}
# Threads serving HTTP in each web process; each may hold one pooled connection.
CHORUS_HTTP_THREADS = env.int(
    "CHORUS_HTTP_THREADS", default=env.int("DATABASE_POOL_MAX", default=8)
)

REDIS_URL = env.str("REDIS_URL", default="")

# --- Redis outages (faults) ---
# Redis is a convenience, never a reason to fail a request: while it is down the cache
# falls back to each process's memory (backend.core.cache) and live updates are dropped
# (backend.core.live). Seconds to wait for Redis to connect or answer before giving up:
CHORUS_REDIS_TIMEOUT = env.float("CHORUS_REDIS_TIMEOUT", default=0.5)
# Seconds a process waits, after Redis failed, before the cache tries Redis again.
CHORUS_REDIS_RETRY_SECONDS = env.float("CHORUS_REDIS_RETRY_SECONDS", default=5.0)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "backend.core.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chorus"),
            "OPTIONS": {
                "socket_connect_timeout": CHORUS_REDIS_TIMEOUT,
                "socket_timeout": CHORUS_REDIS_TIMEOUT,
                "FALLBACK_RETRY_SECONDS": CHORUS_REDIS_RETRY_SECONDS,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": CHORUS_REDIS_TIMEOUT,
                        # Not socket_timeout: a WebSocket's receive blocks on Redis for
                        # seconds by design (BLPOP); channels_redis bounds that itself.
                    }
                ]
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: a broker when REDIS_URL (or CELERY_BROKER_URL) is set, else jobs run eagerly.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL.startswith("memory://")
)
CELERY_TASK_EAGER_PROPAGATES = True
# Celery's Django fix-up closes Django's connections, and in a pool process its connection
# pool, around every job unless told to reuse them: then it does so every this many jobs,
# and backend/celery.py gives each job's connection back to the pool as a request would.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# --- Lost workers and a dead broker (faults) ---
# A job whose worker process dies (the OOM killer, a redeploy) goes back to the queue
# instead of being acknowledged as failed; jobs are written to survive running twice.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Redis only: a message taken by a worker that then vanished is handed out again after
# this many seconds (RabbitMQ redelivers at once when the worker's connection drops). A
# job still running past it is delivered a second time; the jobs are idempotent, and a
# running export knows it is still alive (backend.exports.services).
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, float] = {
    "visibility_timeout": env.float("CELERY_VISIBILITY_TIMEOUT", default=3600.0)
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "socket_connect_timeout": CHORUS_REDIS_TIMEOUT,
        "socket_timeout": max(CHORUS_REDIS_TIMEOUT, 5.0),
        # A worker looks for messages past the visibility timeout every quarter of it,
        # kept between 1 and 10 s. Kombu 5.7's default (a scan on every tenth 10-second
        # tick) would hand a lost job out again up to 100 s late.
        "unacked_restore_interval": int(
            min(10, max(1, CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] // 4))
        ),
        "unacked_restore_throttle": 1,
    }
# Sending a job from a request while the broker is down fails fast (the job is logged
# and dropped; the beat jobs reconcile what it would have done) rather than stalling it.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BEAT_SCHEDULE = {
    "reconcile-trees": {
        "task": "backend.trees.jobs.reconcile_trees_job",
        "schedule": env.float("CHORUS_RECONCILE_SECONDS", default=60.0),
    },
    "expire-tasks": {
        "task": "backend.tasks.jobs.expire_tasks_job",
        "schedule": env.float("CHORUS_EXPIRE_SECONDS", default=60.0),
    },
    # Exports whose worker died (CHORUS_EXPORT_STALE_MINUTES decides which) or whose job
    # never reached the broker (CHORUS_EXPORT_REQUEUE_MINUTES): a coarse interval is enough.
    "recover-stale-exports": {
        "task": "backend.exports.jobs.recover_stale_exports_job",
        "schedule": 600.0,
    },
    # The served model's candidate replies in growing trees; does nothing without
    # INFERENCE_URL and backs off by itself while the inference server is down.
    "write-candidate-replies": {
        "task": "backend.assistant.jobs.write_candidate_replies_job",
        "schedule": env.float("CHORUS_CANDIDATE_SECONDS", default=300.0),
    },
}
# Periodic jobs: one not started by the time the next is due is dropped (each run sweeps
# everything), so a worker slower than the schedule never piles up copies of the same job
# ahead of the jobs volunteers' work queues (seen in bench/soak.py on a busy machine).
for _periodic in CELERY_BEAT_SCHEDULE.values():
    _periodic["options"] = {"expires": _periodic["schedule"]}

# The conversation-tree rules (DESIGN.md §3); each tree copies them when it is created and
# a moderator may change them per tree.
CHORUS_TREE = {
    "reviews_per_message": env.int("CHORUS_REVIEWS_PER_MESSAGE", default=3),
    "acceptance_threshold": env.float("CHORUS_ACCEPTANCE_THRESHOLD", default=0.6),
    "max_active_trees": env.int("CHORUS_MAX_ACTIVE_TREES", default=10),
    "max_prompts_in_review": env.int("CHORUS_MAX_PROMPTS_IN_REVIEW", default=100),
    "max_prompts_in_lottery": env.int("CHORUS_MAX_PROMPTS_IN_LOTTERY", default=250),
    "max_depth": env.int("CHORUS_MAX_TREE_DEPTH", default=5),
    "max_children_prompter": env.int("CHORUS_MAX_CHILDREN_PROMPTER", default=3),
    "max_children_assistant": env.int("CHORUS_MAX_CHILDREN_ASSISTANT", default=1),
    "goal_tree_size": env.int("CHORUS_GOAL_TREE_SIZE", default=12),
    "rankings_per_parent": env.int("CHORUS_RANKINGS_PER_PARENT", default=3),
    "rank_prompter_replies": env.bool("CHORUS_RANK_PROMPTER_REPLIES", default=False),
}
CHORUS_TASK_LEASE_MINUTES = env.float("CHORUS_TASK_LEASE_MINUTES", default=30.0)
CHORUS_MIN_TEXT_LENGTH = env.int("CHORUS_MIN_TEXT_LENGTH", default=1)
CHORUS_MAX_TEXT_LENGTH = env.int("CHORUS_MAX_TEXT_LENGTH", default=2000)
CHORUS_LANGUAGES = env.list("CHORUS_LANGUAGES", default=["en", "de", "es", "fr"])
CHORUS_TERMS_VERSION = env.int("CHORUS_TERMS_VERSION", default=1)
# Dataset versions are written to <CHORUS_EXPORT_DIR>/vN; the card states the licence.
CHORUS_EXPORT_DIR = env.str("CHORUS_EXPORT_DIR", default=str(BASE_DIR / "var" / "exports"))
CHORUS_DATASET_LICENSE = env.str("CHORUS_DATASET_LICENSE", default="apache-2.0")
# An export still running after this long lost its worker: it is marked failed and its
# temporary folder removed. Keep it above the longest export you expect.
CHORUS_EXPORT_STALE_MINUTES = env.float("CHORUS_EXPORT_STALE_MINUTES", default=120.0)
# An export still waiting for a worker after this long has its job sent again (by the
# recovery job, every 10 minutes): the first may never have reached the broker. A job
# delivered twice runs once.
CHORUS_EXPORT_REQUEUE_MINUTES = env.float("CHORUS_EXPORT_REQUEUE_MINUTES", default=10.0)
# `push_dataset` publishes versions to this Hugging Face dataset repo (ORG/NAME) with a
# write token; both may also be given to the command.
CHORUS_HF_DATASET_REPO = env.str("CHORUS_HF_DATASET_REPO", default="")
HF_TOKEN = env.str("HF_TOKEN", default="")
# Adds an X-SQL-Queries header to every response (benchmarks read it); off in production.
CHORUS_QUERY_COUNT_HEADER = env.bool("CHORUS_QUERY_COUNT_HEADER", default=False)

# The assistant (backend/assistant): any OpenAI-compatible server (`python -m ml serve`,
# vLLM, TGI). Empty INFERENCE_URL switches the chat and the candidate replies off.
INFERENCE_URL = env.str("INFERENCE_URL", default="").rstrip("/")
# The model id to ask for; empty: the first one the server lists at /v1/models.
INFERENCE_MODEL = env.str("INFERENCE_MODEL", default="")
# Sent as a bearer token when the server wants one (vLLM --api-key). Secret.
INFERENCE_API_KEY = env.str("INFERENCE_API_KEY", default="")
# Seconds to open a connection, and to wait for the next piece of an answer (replies are
# always read as streams): past either the user is told the model is down or slow.
INFERENCE_CONNECT_TIMEOUT = env.float("INFERENCE_CONNECT_TIMEOUT", default=5.0)
INFERENCE_TIMEOUT = env.float("INFERENCE_TIMEOUT", default=60.0)
# Longest reply, in tokens, for chats and candidate replies.
INFERENCE_MAX_TOKENS = env.int("INFERENCE_MAX_TOKENS", default=512)
# Share of the open assistant-reply slots in growing trees the model fills on each run of
# the candidate job (0 switches it off); its replies are reviewed and ranked like anyone's.
CHORUS_CANDIDATE_SHARE = env.float("CHORUS_CANDIDATE_SHARE", default=0.2)
# Most candidate replies one run writes, so a run stays short however many slots are open.
CHORUS_CANDIDATE_MAX_PER_RUN = env.int("CHORUS_CANDIDATE_MAX_PER_RUN", default=20)

# Health checks (README "Deployment"): /readyz checks PostgreSQL, Redis (with REDIS_URL) and
# the inference server (with INFERENCE_URL) in parallel; one that has not answered within
# this many seconds counts as down.
CHORUS_READYZ_TIMEOUT = env.float("CHORUS_READYZ_TIMEOUT", default=2.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "backend.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's HTML pages for the API need an inline <style> and inline event handlers,
    # which the Content-Security-Policy refuses: they are for development (DEBUG) only.
    # In production a browser gets the JSON, and /api/docs/ is the API to click through.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "backend.core.api_schema.ChorusAutoSchema",
    "EXCEPTION_HANDLER": "backend.core.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Rate limits (below): a ceiling on every request, and the scope a view names.
    "DEFAULT_THROTTLE_CLASSES": [
        "backend.core.throttling.ApiThrottle",
        "backend.core.throttling.ActionThrottle",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Rate limits (README "Rate limits", backend/core/ratelimit.py): per scope, COUNT/PERIOD
# (e.g. 30/min, 5/5min, 1000/day; "off" for none) per signed-in user, per client address,
# per anonymous client address ("anon") and per account named in a form. Counted in the
# default cache (Redis: shared by every process), in process memory while it fails. Over a
# rate: 429 with Retry-After. The defaults leave a fast honest volunteer (a task takes a
# human seconds) far below them and stop a script that hammers.
CHORUS_RATELIMITS_ENABLED = env.bool("CHORUS_RATELIMITS_ENABLED", default=True)
# Proxies in front of the web processes that append to X-Forwarded-For (0: the header is
# ignored, the client is REMOTE_ADDR); more than really exist would let clients forge it.
CHORUS_TRUSTED_PROXIES = env.int("CHORUS_TRUSTED_PROXIES", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = CHORUS_TRUSTED_PROXIES
CHORUS_RATELIMIT_PREFIX = "ratelimit"  # cache keys; tests give each test its own
CHORUS_RATELIMITS = {
    # Every API request: a ceiling per user, and per address for anonymous requests.
    "api": {
        "user": env.str("CHORUS_RATE_USER", default="6000/min"),
        "anon": env.str("CHORUS_RATE_ANON", default="120/min"),
    },
    "task_request": {
        "user": env.str("CHORUS_RATE_TASK_REQUEST", default="60/min"),
        "ip": env.str("CHORUS_RATE_TASK_REQUEST_IP", default="600/min"),
    },
    "task_submit": {
        "user": env.str("CHORUS_RATE_TASK_SUBMIT", default="60/min"),
        "ip": env.str("CHORUS_RATE_TASK_SUBMIT_IP", default="600/min"),
    },
    "report": {
        "user": env.str("CHORUS_RATE_REPORT", default="20/min"),
        "ip": env.str("CHORUS_RATE_REPORT_IP", default="200/min"),
    },
    "chat_message": {
        "user": env.str("CHORUS_RATE_CHAT_MESSAGE", default="20/min"),
        "ip": env.str("CHORUS_RATE_CHAT_MESSAGE_IP", default="200/min"),
    },
    "api_key": {
        "user": env.str("CHORUS_RATE_API_KEY", default="10/hour"),
        "ip": env.str("CHORUS_RATE_API_KEY_IP", default="30/hour"),
    },
    "login": {"ip": env.str("CHORUS_RATE_LOGIN_IP", default="30/min")},
    "login_failed": {"account": env.str("CHORUS_RATE_LOGIN_FAILED_ACCOUNT", default="5/5min")},
    "signup": {"ip": env.str("CHORUS_RATE_SIGNUP_IP", default="30/hour")},
    "password_reset": {
        "ip": env.str("CHORUS_RATE_PASSWORD_RESET_IP", default="10/hour"),
        "account": env.str("CHORUS_RATE_PASSWORD_RESET_ACCOUNT", default="3/hour"),
    },
    "account_change": {"user": env.str("CHORUS_RATE_ACCOUNT_CHANGE", default="20/hour")},
}
# allauth's own limits are off: the ones above cover them, answer with Retry-After, and
# keep counting while Redis is down (allauth's cache lock would fail the login instead).
ACCOUNT_RATE_LIMITS = False

SPECTACULAR_SETTINGS = {
    "TITLE": "Chorus API",
    "DESCRIPTION": (
        "Volunteer tasks, conversation trees, reactions and reports. Every error has the "
        'shape {"error": {"code", "message", "fields"}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Reports of tree messages and of chat replies share their reasons: one enum.
    "ENUM_NAME_OVERRIDES": {"ReportReasonEnum": "backend.moderation.models.ReportReason"},
}

LANGUAGE_CODE = "en"
# Languages of the interface (the data languages are CHORUS_LANGUAGES).
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "frontend" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Accounts (django-allauth): email and password, or a username for the demo logins.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_FORMS = {"signup": "frontend.forms.SignupForm"}
# No mail server is needed to start: "optional" sends a confirmation link but lets people
# work before they click it; production may set "mandatory".
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_PRESERVE_USERNAME_CASING = False
SOCIALACCOUNT_PROVIDERS = {
    name: {
        "APPS": [
            {
                "client_id": env.str(f"{name.upper()}_CLIENT_ID", default=""),
                "secret": env.str(f"{name.upper()}_CLIENT_SECRET", default=""),
            }
        ]
    }
    for name in _OAUTH_PROVIDERS
}
# Mail (password reset, address confirmation): printed to the console unless EMAIL_URL is
# set, e.g. smtp+tls://user:password@mail.example.org:587.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Chorus <chorus@localhost>")

# Automatic moderation (README "Automatic moderation"). A message that this many people
# red-flag (open report, review flagging spam/pii/not_appropriate/hate_speech/sexual_content,
# or a red-flag reaction), or that this many skip as inappropriate or in the wrong language,
# is acted on: "hide" deletes it with its replies, "halt" halts its tree; 0 switches a
# trigger off. Either way it lands in the moderators' report queue.
CHORUS_AUTOMOD_RED_FLAGS = env.int("CHORUS_AUTOMOD_RED_FLAGS", default=3)
CHORUS_AUTOMOD_SKIPS = env.int("CHORUS_AUTOMOD_SKIPS", default=5)
CHORUS_AUTOMOD_ACTION = env.str("CHORUS_AUTOMOD_ACTION", default="hide")
if CHORUS_AUTOMOD_ACTION not in ("hide", "halt"):
    raise ValueError(f"CHORUS_AUTOMOD_ACTION must be hide or halt, not {CHORUS_AUTOMOD_ACTION!r}")
# Flag submitted texts with personal data (emails, phone numbers, ...) for review.
CHORUS_AUTOMOD_PII = env.bool("CHORUS_AUTOMOD_PII", default=True)
# Refuse a first prompt that nearly repeats a live one in its language.
CHORUS_REJECT_DUPLICATE_PROMPTS = env.bool("CHORUS_REJECT_DUPLICATE_PROMPTS", default=True)

# Rank tasks show a badge on model-written replies only when this is on: blind ranking
# (the default) keeps volunteers from favouring or punishing the model for being one.
CHORUS_REVEAL_SYNTHETIC = env.bool("CHORUS_REVEAL_SYNTHETIC", default=False)

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "backend.core.static.StaticStorage"},
}
# Tests and `runserver` find static files in the apps without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG or env.bool("WHITENOISE_USE_FINDERS", default=False)

# --- Security (README "Security") ----------------------------------------------------------
# The defaults keep `make run` working on plain http://127.0.0.1; production turns HTTPS on
# with the values in docker/.env.example, and `manage.py check --deploy` passes with them.
# Send every http:// request to https://. Health checks come from inside the deployment
# over plain HTTP, so they are never redirected.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
# Behind a TLS-terminating proxy, the header it sets to "https" (e.g. X-Forwarded-Proto);
# empty: the request's own scheme. Set it only when the proxy overwrites that header,
# else a client could claim HTTPS.
_PROXY_SSL_HEADER = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https") if _PROXY_SSL_HEADER else None
)
# HSTS: browsers use only HTTPS for this long once they saw the header. 0 (development)
# sends none; production a year, once HTTPS works everywhere (it cannot be taken back early).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = env.str(
    "SECURE_CROSS_ORIGIN_OPENER_POLICY", default="same-origin"
)
# No page of Chorus is meant to be framed (CSP frame-ancestors 'none' says the same).
X_FRAME_OPTIONS = "DENY"
# Cookies: only over HTTPS in production; never readable by scripts (the pages take the CSRF
# token from the form, not the cookie); "Lax" so that coming back from an OAuth provider
# (a top-level GET from another site) still carries the session.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Content-Security-Policy (django-csp): only the site's own scripts, styles, images and
# connections. 'self' in connect-src covers the same host's ws:/wss: in current browsers;
# backend.core.csp adds the WebSocket origin explicitly for older ones. A sign-in form
# posts to Chorus, which redirects to the OAuth provider: form-action must allow the
# provider's origin or browsers stop the redirect. The API docs page has its own policy
# (backend.core.api_docs). Images only from Chorus itself: a picture linked in a message
# is not fetched, so no outside server learns who reads it. Extra origins for form-action
# (another OAuth provider): CHORUS_CSP_FORM_ACTION.
_OAUTH_AUTHORIZE_ORIGINS = {
    "github": "https://github.com",
    "gitlab": "https://gitlab.com",
    "google": "https://accounts.google.com",
    "discord": "https://discord.com",
    "huggingface": "https://huggingface.co",
}
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": [
            "'self'",
            *(
                _OAUTH_AUTHORIZE_ORIGINS[name]
                for name in _OAUTH_PROVIDERS
                if name in _OAUTH_AUTHORIZE_ORIGINS
            ),
            *env.list("CHORUS_CSP_FORM_ACTION", default=[]),
        ],
    },
}

# --- Logs and metrics (README "Monitoring") ----------------------------------------------
# LOG_FORMAT=json writes one JSON object per line on stderr (timestamp, level, logger,
# message, the request's method, path and user, a job's id and name, exception text), for
# log collectors; text (the default) is for people at a terminal. In json mode the
# `chorus.access` line replaces uvicorn's access log.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("json", "text"):
    raise ValueError(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOG_LEVEL = env.str("LOG_LEVEL", default="WARNING")
# /metrics (Prometheus text format) answers a bearer token and clients in these networks
# (CIDRs); a wrong token gets 403, anyone else 404. Both empty: no one can read it.
CHORUS_METRICS_TOKEN = env.str("CHORUS_METRICS_TOKEN", default="")
CHORUS_METRICS_NETWORKS = env.list("CHORUS_METRICS_NETWORKS", default=[])
for _network in CHORUS_METRICS_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ValueError(f"CHORUS_METRICS_NETWORKS: {_network!r} is not a network") from None
# Several processes (uvicorn workers, Celery's pool) add up their metrics through files in
# this folder; prometheus_client reads the same variable when it is imported. Empty: each
# process shows only its own.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if not PROMETHEUS_MULTIPROC_DIR:
    # Set but empty (a blank line in an env file) would put prometheus_client into
    # multiprocess mode writing to the current folder.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# Celery must leave logging to LOGGING below (backend/celery.py applies it to workers).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING_CONFIG = "backend.core.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "backend.core.logs.JsonFormatter"}},
    "filters": {"context": {"()": "backend.core.logs.ContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            **({"formatter": "json", "filters": ["context"]} if LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # 4xx answers (e.g. "no task available" while volunteers poll) are not the server's
        # problems; the access log has them.
        "django.request": {"level": "ERROR"},
        # In json mode uvicorn's own lines go through the JSON handler too, and its access
        # log (plain text, no route or user) gives way to chorus.access.
        **(
            {
                "uvicorn": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
                "uvicorn.access": {"level": "WARNING"},
            }
            if LOG_FORMAT == "json"
            else {}
        ),
    },
}
