"""Chorus settings: every value comes from the environment (see docker/.env.example).

With nothing set, Chorus runs on an embedded PostgreSQL, executes Celery jobs eagerly in
process and uses in-memory caches and channel layers. Setting DATABASE_URL, REDIS_URL and
INFERENCE_URL turns the same code into a horizontally scalable deployment.
"""

from __future__ import annotations

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
    "django.middleware.security.SecurityMiddleware",
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

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chorus"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
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
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "reconcile-trees": {
        "task": "backend.trees.jobs.reconcile_trees_job",
        "schedule": env.float("CHORUS_RECONCILE_SECONDS", default=60.0),
    },
    "expire-tasks": {
        "task": "backend.tasks.jobs.expire_tasks_job",
        "schedule": env.float("CHORUS_EXPIRE_SECONDS", default=60.0),
    },
    # Exports whose worker died; CHORUS_EXPORT_STALE_MINUTES decides which, so a coarse
    # interval is enough.
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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "backend.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "backend.core.api_schema.ChorusAutoSchema",
    "EXCEPTION_HANDLER": "backend.core.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("CHORUS_RATE_ANON", default="120/min"),
        "user": env.str("CHORUS_RATE_USER", default="6000/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

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

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    # 4xx answers (e.g. "no task available" while volunteers poll) are not the server's
    # problems; the access log has them.
    "loggers": {"django.request": {"level": "ERROR"}},
}
