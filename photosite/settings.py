"""Configure photosite from the environment, with embedded-mode defaults.

With no variables set, everything runs on one machine: SQLite and uploaded
files under DATA_DIR, a Celery broker kept in files, the local labelling model
and local accounts. Setting the AWS variables switches each part over.
"""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets classes such as ModelForm take type parameters at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number") from None


def env_list(name: str, default: str = "") -> list[str]:
    value = os.environ.get(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)
DATA_DIR = Path(os.environ.get("DATA_DIR") or BASE_DIR / "var")

# The development key is only acceptable while DEBUG is on; a deployment
# without SECRET_KEY refuses to start rather than sign sessions with it.
DEVELOPMENT_SECRET_KEY = "development-only-key-not-for-production"
SECRET_KEY = os.environ.get("SECRET_KEY") or os.environ.get("FLASK_SECRET") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY, or DEBUG=true for development.")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    "gallery",
    "labeling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "photosite.urls"
WSGI_APPLICATION = "photosite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.sign_in_options",
            ],
        },
    },
]

# Database: SQLite under DATA_DIR unless DATABASE_URL names another, such as
# mysql://user:password@host:3306/photosite for RDS.
if not os.environ.get("DATABASE_URL"):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'photosite.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file rather than memory, so a worker process started by a test sees
    # the same test database; one per test run, so runs can overlap.
    test_database = DATA_DIR / f"test_photosite_{os.getpid()}.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": str(test_database)}
    # The web server and the worker write at once: transactions take the
    # write lock up front and wait for it, and readers never block writers.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}
    )
    DATABASES["default"]["TEST"] = {
        "CHARSET": "utf8mb4",
        "COLLATION": "utf8mb4_unicode_ci",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation." + name}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "gallery:photo_list"
LOGOUT_REDIRECT_URL = "accounts:login"
LOCAL_SIGNUP_ENABLED = env_bool("LOCAL_SIGNUP_ENABLED", default=True)
# Wrong passwords an account may be given within the window before sign-in
# to it pauses until the oldest of them is out of the window.
SIGN_IN_MAX_FAILURES = env_int("SIGN_IN_MAX_FAILURES", 10)
SIGN_IN_FAILURE_WINDOW_MINUTES = env_int("SIGN_IN_FAILURE_WINDOW_MINUTES", 15)
if SIGN_IN_MAX_FAILURES < 1 or SIGN_IN_FAILURE_WINDOW_MINUTES < 1:
    raise ImproperlyConfigured("SIGN_IN_MAX_FAILURES and its window must be 1 or more.")

# Sign-in with Amazon Cognito (mozilla-django-oidc), on once a user pool and
# an app client are set; OIDC_ISSUER points the same flow at another OpenID
# Connect provider, as the tests do. Endpoints come from the issuer's
# discovery document on first use (accounts/oidc.py), so the site starts
# while the provider is out of reach. See docs/cognito.md.
COGNITO_USER_POOL_ID = os.environ.get("COGNITO_USER_POOL_ID", "")
# A pool id begins with its region ("eu-west-1_AbC123").
COGNITO_REGION = os.environ.get("COGNITO_REGION") or COGNITO_USER_POOL_ID.split("_")[0]
# The hosted pages' domain, for /logout; discovery names it when unset.
COGNITO_DOMAIN = (
    os.environ.get("COGNITO_DOMAIN", "").removeprefix("https://").strip("/")
)
COGNITO_SIGN_OUT_URL = os.environ.get("COGNITO_SIGN_OUT_URL", "")
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").rstrip("/")
if COGNITO_USER_POOL_ID and not OIDC_ISSUER:
    OIDC_ISSUER = (
        f"https://cognito-idp.{COGNITO_REGION}.amazonaws.com/{COGNITO_USER_POOL_ID}"
    )
OIDC_RP_CLIENT_ID = os.environ.get("COGNITO_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("COGNITO_CLIENT_SECRET", "")
OIDC_ENABLED = bool(OIDC_ISSUER and OIDC_RP_CLIENT_ID)
OIDC_RP_SCOPES = os.environ.get("COGNITO_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_TOKEN_USE_BASIC_AUTH = True
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10)
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env_int("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", 900)
OIDC_AUTHENTICATE_CLASS = "accounts.views.StartSignInView"
OIDC_CALLBACK_CLASS = "accounts.views.SignInCallbackView"
LOGIN_REDIRECT_URL_FAILURE = LOGIN_URL
if OIDC_ENABLED:
    if not OIDC_RP_CLIENT_SECRET:
        raise ImproperlyConfigured("Set COGNITO_CLIENT_SECRET with COGNITO_CLIENT_ID.")
    AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "accounts.backends.CognitoBackend",
    ]
    MIDDLEWARE.append("accounts.oidc.SessionRefresh")
    OIDC_OP_LOGOUT_URL_METHOD = "accounts.oidc.provider_logout_url"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Photo storage: a private folder under DATA_DIR, or the S3 bucket named by
# PHOTOS_BUCKET. Either way files are never public; see gallery/storage.py.
PHOTOS_BUCKET = os.environ.get("PHOTOS_BUCKET", "")
AWS_REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
AWS_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL", "")
PRESIGNED_URL_SECONDS = env_int("PRESIGNED_URL_SECONDS", 300)
if PHOTOS_BUCKET:
    photo_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": PHOTOS_BUCKET,
            "region_name": AWS_REGION or None,
            "endpoint_url": AWS_ENDPOINT_URL or None,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": PRESIGNED_URL_SECONDS,
            # botocore would otherwise presign with the retired SigV2.
            "signature_version": "s3v4",
            "file_overwrite": True,
            "object_parameters": {"ServerSideEncryption": "AES256"},
        },
    }
else:
    photo_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "media", "allow_overwrite": True},
    }
STORAGES = {
    "default": photo_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

# Uploads: files over 2.5 MB stream to a temporary file rather than memory,
# and the size handler stops reading a file once it passes the limit.
PHOTO_MAX_BYTES = env_int("PHOTO_MAX_BYTES", 25 * 1024 * 1024)
PHOTO_MAX_PIXELS = env_int("PHOTO_MAX_PIXELS", 120_000_000)
PHOTO_MAX_FILES_PER_UPLOAD = env_int("PHOTO_MAX_FILES_PER_UPLOAD", 20)
PHOTOS_PER_PAGE = env_int("PHOTOS_PER_PAGE", 48)
FILE_UPLOAD_HANDLERS = [
    "gallery.uploads.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FILES = PHOTO_MAX_FILES_PER_UPLOAD * 5
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None

# Celery: an embedded broker kept in files under DATA_DIR by default; an
# sqs:// URL (issue: AWS mode) or any kombu URL in CELERY_BROKER_URL instead.
# The host is ignored; naming one keeps kombu from warning on every publish.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR = Path(os.environ.get("BROKER_DIR") or DATA_DIR / "broker")
    # kombu's file transport expects its folders to exist already.
    for broker_folder in ("queue", "processed", "control"):
        (BROKER_DIR / broker_folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# AWS mode: S3 announces each new photo to an SNS topic, which feeds an SQS
# queue that the worker consumes; Celery's own tasks travel over SQS too.
# `manage.py setup_aws` creates all of these under the names below.
AWS_ACCOUNT_ID = os.environ.get("AWS_ACCOUNT_ID", "")
PHOTO_EVENTS_TOPIC = os.environ.get("PHOTO_EVENTS_TOPIC", "photosite-photo-events")
PHOTO_EVENTS_QUEUE = os.environ.get("PHOTO_EVENTS_QUEUE", "photosite-photo-events")
PHOTO_EVENTS_DLQ = os.environ.get("PHOTO_EVENTS_DLQ", "photosite-photo-events-dlq")
PHOTO_TASKS_QUEUE = os.environ.get("PHOTO_TASKS_QUEUE", "photosite-tasks")
PHOTO_TASKS_DLQ = os.environ.get("PHOTO_TASKS_DLQ", "photosite-tasks-dlq")
# A message received this many times without being deleted moves to the DLQ.
SQS_MAX_RECEIVES = env_int("SQS_MAX_RECEIVES", 5)
# A notification that cannot be handled is received again after this long.
PHOTO_EVENTS_VISIBILITY_SECONDS = env_int("PHOTO_EVENTS_VISIBILITY_SECONDS", 60)
# Longer than any task runs or waits for its countdown, or SQS hands the same
# task to a second worker.
PHOTO_TASKS_VISIBILITY_SECONDS = env_int("PHOTO_TASKS_VISIBILITY_SECONDS", 300)
# How long a notification keeps waiting for its photo's row to be committed.
PHOTO_EVENT_WAIT_SECONDS = env_int("PHOTO_EVENT_WAIT_SECONDS", 900)
# Sites allowed to post uploads straight to the bucket (its CORS rule).
PHOTOS_CORS_ORIGINS = env_list("PHOTOS_CORS_ORIGINS") or CSRF_TRUSTED_ORIGINS
if CELERY_BROKER_URL.startswith("sqs://"):
    if not (AWS_REGION and AWS_ACCOUNT_ID):
        raise ImproperlyConfigured("Set AWS_REGION and AWS_ACCOUNT_ID with sqs://.")
    # Predefined queues need no sqs:ListQueues or sqs:CreateQueue rights.
    sqs_url = AWS_ENDPOINT_URL.rstrip("/") or f"https://sqs.{AWS_REGION}.amazonaws.com"
    CELERY_TASK_DEFAULT_QUEUE = PHOTO_TASKS_QUEUE
    # A task that fails unexpectedly is left in SQS, not deleted: it comes back
    # after the visibility timeout and ends in the tasks' dead-letter queue.
    CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = False
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "region": AWS_REGION,
        "is_secure": not AWS_ENDPOINT_URL.startswith("http://"),
        "visibility_timeout": PHOTO_TASKS_VISIBILITY_SECONDS,
        "wait_time_seconds": env_int("SQS_WAIT_TIME_SECONDS", 20),
        "predefined_queues": {
            name: {"url": f"{sqs_url}/{AWS_ACCOUNT_ID}/{name}"}
            for name in (PHOTO_TASKS_QUEUE, PHOTO_EVENTS_QUEUE)
        },
    }

# Labelling: which backend looks at photos, and what it reports.
LABELER = os.environ.get("LABELER", "rekognition" if PHOTOS_BUCKET else "local")
LABEL_MIN_CONFIDENCE = float(os.environ.get("LABEL_MIN_CONFIDENCE") or 55)
LABEL_MAX_LABELS = env_int("LABEL_MAX_LABELS", 15)
# Threads each worker process gives the local model. The worker runs one
# process per core, so one thread each keeps them from fighting over cores.
LABEL_MODEL_THREADS = env_int("LABEL_MODEL_THREADS", 1)
# "int8" runs the local model's 8-bit copies, "float32" the originals; the
# 8-bit ones are about twice as fast on CPUs with 8-bit dot products.
LABEL_MODEL_PRECISION = os.environ.get("LABEL_MODEL_PRECISION", "int8")
if LABEL_MODEL_PRECISION not in ("int8", "float32"):
    raise ImproperlyConfigured("LABEL_MODEL_PRECISION must be int8 or float32.")
# How a new photo reaches the worker: "commit" queues a task when the upload
# commits; "s3" leaves it to the bucket's event notification (AWS mode);
# "none" queues nothing (benchmarks, bulk imports run reprocess_photos).
# S3 notifications only reach the worker over SQS, so "s3" needs that broker.
PHOTO_EVENTS = os.environ.get(
    "PHOTO_EVENTS",
    "s3" if PHOTOS_BUCKET and CELERY_BROKER_URL.startswith("sqs://") else "commit",
)
LABEL_TASK_MAX_RETRIES = env_int("LABEL_TASK_MAX_RETRIES", 4)
# The secret the labelling Lambda signs its callbacks with (docs/lambda.md).
# No default: without it the callback endpoint answers 503.
LABEL_CALLBACK_SECRET = os.environ.get("LABEL_CALLBACK_SECRET", "")
# While the secret is rotated, the one being replaced; accepted as well.
LABEL_CALLBACK_PREVIOUS_SECRET = os.environ.get("LABEL_CALLBACK_PREVIOUS_SECRET", "")
LABEL_CALLBACK_MAX_AGE_SECONDS = 300

# Tracing with AWS X-Ray: on in AWS mode, off in embedded mode unless asked.
TRACING_ENABLED = env_bool("TRACING_ENABLED", default=bool(PHOTOS_BUCKET))
TRACING_SERVICE_NAME = os.environ.get("TRACING_SERVICE_NAME", "photosite")
# Segments go over UDP to the X-Ray daemon or an ADOT collector; with none
# listening they are dropped without a word. See docs/tracing.md.
TRACING_DAEMON_ADDRESS = os.environ.get("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")
# Each process traces this many requests or tasks a second, then this share
# of the rest; a queued task follows the decision made for its request.
TRACING_SAMPLES_PER_SECOND = env_int("TRACING_SAMPLES_PER_SECOND", 1)
TRACING_SAMPLING_RATE = float(os.environ.get("TRACING_SAMPLING_RATE") or 0.05)
# Rules from the X-Ray console, fetched through the daemon; the two settings
# above remain the fallback. Off by default: without a daemon it logs errors.
TRACING_CENTRAL_SAMPLING = env_bool("TRACING_CENTRAL_SAMPLING", default=False)
if TRACING_ENABLED:
    INSTALLED_APPS.append("photosite.tracing.TracingConfig")
    # First, so a request's segment covers the other middleware's queries.
    MIDDLEWARE.insert(0, "photosite.tracing.tracing_middleware")

# Production hardening, active whenever DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
