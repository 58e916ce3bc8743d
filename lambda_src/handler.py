"""Label new photos with Rekognition and post the labels back to the site."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Deployed alone, so only the standard library and the runtime's boto3: never
# anything from the site.
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

try:
    from aws_xray_sdk.core import xray_recorder
except ImportError:
    # Only there if a layer adds it; Lambda traces the invocation regardless.
    xray_recorder = None

logger = logging.getLogger(__name__)

T = TypeVar("T")

LABELER = "lambda"
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException"}
)
# Attributes every LogRecord has; anything else was passed in `extra`.
STANDARD_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime"}


class ConfigurationError(RuntimeError):
    """The function's environment is missing or holds a bad setting."""


class TransientError(Exception):
    """A failure that another attempt may not repeat."""


class CallbackRefusedError(Exception):
    """The site answered the callback with a status retrying cannot fix."""


class LabellingError(RuntimeError):
    """Some photos of the event were not labelled; Lambda should retry it."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(
            f"labelling failed for {len(keys)} photo(s): {', '.join(keys)}"
        )
        self.keys = keys


@dataclass(frozen=True)
class Photo:
    """An object an S3 notification announced."""

    bucket: str
    key: str

    def log_fields(self) -> dict[str, str]:
        """Return the fields that identify the photo in a log line."""
        return {"bucket": self.bucket, "key": self.key}


@dataclass(frozen=True)
class Settings:
    """What the function reads from its environment."""

    callback_url: str
    secret: str = field(repr=False)
    photo_prefix: str = "photos/"
    min_confidence: float = 70.0
    max_labels: int = 20
    attempts: int = 3
    backoff_seconds: float = 0.5
    callback_timeout: float = 10.0


@dataclass(frozen=True)
class Services:
    """The outside world, replaceable in tests."""

    rekognition: Any
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Label every new photo named in an SNS-wrapped S3 event."""
    configure_logging()
    settings = load_settings(os.environ)
    photos = list(photos_in_event(event, settings.photo_prefix))
    logger.info(
        "event received",
        extra={
            "request_id": getattr(context, "aws_request_id", None),
            "photos": len(photos),
        },
    )

    label_photos(photos, settings, default_services())
    return {"labelled": len(photos)}


# Reading the event


def photos_in_event(event: Mapping[str, Any], prefix: str) -> Iterator[Photo]:
    """Yield the new photos under the prefix in every SNS record of the event."""
    for record in event.get("Records", []):
        if record.get("EventSource") != "aws:sns":
            logger.warning(
                "record skipped: not from SNS",
                extra={"event_source": record.get("EventSource")},
            )
            continue
        yield from photos_in_message(record["Sns"], prefix)


def photos_in_message(sns: Mapping[str, Any], prefix: str) -> Iterator[Photo]:
    """Yield the new photos under the prefix announced by one S3 notification."""
    fields = {"message_id": sns.get("MessageId")}
    try:
        message = json.loads(sns.get("Message", ""))
    except ValueError:
        # Retrying cannot turn garbage into a notification, so skip it.
        logger.warning("message skipped: not JSON", extra=fields)
        return
    if not isinstance(message, dict):
        logger.warning("message skipped: not an S3 event", extra=fields)
        return
    if message.get("Event") == "s3:TestEvent":
        logger.info("message skipped: S3 test event", extra=fields)
        return

    for s3_record in message.get("Records", []):
        photo = photo_in_s3_record(s3_record)
        if photo is None:
            logger.warning("S3 record skipped: unexpected shape", extra=fields)
        elif not s3_record.get("eventName", "").startswith("ObjectCreated:"):
            logger.info("S3 record skipped: not a new object", extra=photo.log_fields())
        elif not photo.key.startswith(prefix):
            logger.info(
                "S3 record skipped: outside photo prefix", extra=photo.log_fields()
            )
        else:
            yield photo


def photo_in_s3_record(s3_record: Any) -> Photo | None:
    """Return the bucket and decoded key an S3 record names, or None."""
    try:
        bucket = s3_record["s3"]["bucket"]["name"]
        encoded_key = s3_record["s3"]["object"]["key"]
    except (KeyError, TypeError):
        return None
    # S3 encodes spaces as "+" and non-ASCII as %XX; moto encodes "/" too.
    return Photo(bucket=bucket, key=urllib.parse.unquote_plus(encoded_key))


# Configuration


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the settings from the environment, failing loudly on a bad one."""
    callback_url = environ.get("CALLBACK_URL", "")
    if urllib.parse.urlsplit(callback_url).scheme not in ("http", "https"):
        raise ConfigurationError("CALLBACK_URL must be set to an http(s) URL")

    return Settings(
        callback_url=callback_url,
        secret=read_secret(environ),
        photo_prefix=environ.get("PHOTO_PREFIX", "photos/"),
        min_confidence=number_setting(environ, "MIN_CONFIDENCE", 70.0, float),
        max_labels=number_setting(environ, "MAX_LABELS", 20, int),
        attempts=number_setting(environ, "RETRY_ATTEMPTS", 3, int),
        backoff_seconds=number_setting(environ, "RETRY_BACKOFF_SECONDS", 0.5, float),
        callback_timeout=number_setting(environ, "CALLBACK_TIMEOUT", 10.0, float),
    )


def number_setting(
    environ: Mapping[str, str], name: str, default: T, kind: Callable[[str], T]
) -> T:
    """Return the named setting as a number, or the default when unset."""
    raw = environ.get(name, "")
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def read_secret(environ: Mapping[str, str]) -> str:
    """Return the callback secret from the environment, SSM or Secrets Manager."""
    if environ.get("CALLBACK_SECRET"):
        secret = environ["CALLBACK_SECRET"]
    elif environ.get("CALLBACK_SECRET_PARAMETER"):
        secret = fetch_parameter(environ["CALLBACK_SECRET_PARAMETER"])
    elif environ.get("CALLBACK_SECRET_ID"):
        secret = fetch_secret_value(environ["CALLBACK_SECRET_ID"])
    else:
        raise ConfigurationError(
            "set CALLBACK_SECRET, CALLBACK_SECRET_PARAMETER or CALLBACK_SECRET_ID"
        )
    if not secret:
        raise ConfigurationError("the callback secret is empty")
    return secret


# Cached for the life of the container: one read per cold start, so a
# rotated secret reaches the function when its containers are replaced.
@functools.cache
def fetch_parameter(name: str) -> str:
    """Return the decrypted value of an SSM SecureString parameter."""
    try:
        response = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    except ClientError as error:
        raise ConfigurationError(
            f"cannot read SSM parameter {name}: {error_code(error)}"
        ) from error
    return str(response["Parameter"]["Value"])


@functools.cache
def fetch_secret_value(secret_id: str) -> str:
    """Return the string value of a Secrets Manager secret."""
    try:
        response = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as error:
        raise ConfigurationError(
            f"cannot read secret {secret_id}: {error_code(error)}"
        ) from error
    return str(response.get("SecretString", ""))


@functools.cache
def rekognition_client() -> Any:
    """Return the container's Rekognition client."""
    return boto3.client("rekognition", config=Config(retries={"mode": "standard"}))


def default_services() -> Services:
    """Return the real outside world."""
    return Services(rekognition=rekognition_client())


def error_code(error: ClientError) -> str:
    """Return the AWS error code of a client error."""
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


# Labelling


def label_photos(photos: list[Photo], settings: Settings, services: Services) -> None:
    """Label each photo and post its labels; raise if any of them failed."""
    failed = []
    for photo in photos:
        try:
            label_photo(photo, settings, services)
        except Exception:
            # One bad photo must not cost the others their labels; the
            # exception below makes Lambda retry the event, then dead-letter it.
            logger.exception("labelling failed", extra=photo.log_fields())
            failed.append(photo.key)
    if failed:
        raise LabellingError(failed)


def label_photo(photo: Photo, settings: Settings, services: Services) -> None:
    """Ask Rekognition for the photo's labels and post them to the site."""
    response = with_backoff(
        lambda: detect_labels(photo, settings, services.rekognition),
        settings,
        services.sleep,
        photo,
    )
    body = encode_payload(build_payload(photo, response))

    status = with_backoff(
        lambda: post_callback(body, settings, services.clock),
        settings,
        services.sleep,
        photo,
    )
    logger.info(
        "labels posted",
        extra={
            **photo.log_fields(),
            "labels": len(response.get("Labels", [])),
            "status": status,
        },
    )


def detect_labels(photo: Photo, settings: Settings, rekognition: Any) -> Any:
    """Call DetectLabels on the S3 object, flagging throttling as transient."""
    try:
        with subsegment("Rekognition DetectLabels"):
            return rekognition.detect_labels(
                Image={"S3Object": {"Bucket": photo.bucket, "Name": photo.key}},
                MinConfidence=settings.min_confidence,
                MaxLabels=settings.max_labels,
            )
    except ClientError as error:
        if error_code(error) in THROTTLING_CODES:
            raise TransientError(
                f"Rekognition throttled: {error_code(error)}"
            ) from error
        raise


def with_backoff(
    action: Callable[[], T],
    settings: Settings,
    sleep: Callable[[float], None],
    photo: Photo,
) -> T:
    """Run the action, retrying transient errors with exponential backoff."""
    for attempt in range(1, settings.attempts):
        try:
            return action()
        except TransientError as error:
            delay = settings.backoff_seconds * 2 ** (attempt - 1)
            logger.warning(
                "transient failure, retrying",
                extra={
                    **photo.log_fields(),
                    "attempt": attempt,
                    "delay": delay,
                    "error": str(error),
                },
            )
            sleep(delay)
    return action()


def build_payload(photo: Photo, response: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a DetectLabels response into the site's callback payload."""
    version = response.get("LabelModelVersion")
    return {
        "bucket": photo.bucket,
        "key": photo.key,
        "labeler": LABELER,
        "model_version": f"rekognition:{version}" if version else "rekognition",
        "labels": [callback_label(label) for label in response.get("Labels", [])],
    }


def callback_label(label: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one Rekognition label into the callback's label shape."""
    return {
        "name": label["Name"],
        "confidence": float(label["Confidence"]),
        "parents": [parent["Name"] for parent in label.get("Parents", [])],
        "categories": [category["Name"] for category in label.get("Categories", [])],
        "boxes": [
            {
                "left": float(instance["BoundingBox"]["Left"]),
                "top": float(instance["BoundingBox"]["Top"]),
                "width": float(instance["BoundingBox"]["Width"]),
                "height": float(instance["BoundingBox"]["Height"]),
                "confidence": float(instance["Confidence"]),
            }
            for instance in label.get("Instances", [])
            if "BoundingBox" in instance
        ],
    }


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Serialise the payload as compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# The callback


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value for a body sent at the timestamp."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return "v1=" + digest


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Treat a redirect as an answer: following it would drop the POST body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(RefuseRedirects)


def post_callback(body: bytes, settings: Settings, clock: Callable[[], float]) -> int:
    """POST the signed body to the site once and return the HTTP status."""
    # Signed afresh on every attempt: the site refuses stale timestamps and
    # replayed signatures.
    timestamp = int(clock())
    request = urllib.request.Request(
        settings.callback_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Photosite-Timestamp": str(timestamp),
            "X-Photosite-Signature": sign(settings.secret, timestamp, body),
        },
    )
    try:
        with (
            subsegment("site callback"),
            OPENER.open(request, timeout=settings.callback_timeout) as response,
        ):
            return int(response.status)
    except urllib.error.HTTPError as error:
        if error.code == 429 or error.code >= 500:
            raise TransientError(f"callback answered {error.code}") from error
        raise CallbackRefusedError(f"callback answered {error.code}") from error
    except (OSError, http.client.HTTPException) as error:
        # Connection refused or reset, DNS failure, timeout.
        raise TransientError(f"callback failed: {error!r}") from error


# Tracing


@contextlib.contextmanager
def subsegment(name: str) -> Iterator[None]:
    """Record the enclosed call as an X-Ray subsegment, where X-Ray can."""
    # Inside Lambda the SDK hangs it on the invocation's segment; anywhere
    # else there is no segment, and the SDK would complain.
    if xray_recorder is None or not os.environ.get("LAMBDA_TASK_ROOT"):
        yield
        return
    with xray_recorder.in_subsegment(name, namespace="remote"):
        yield


# Logging


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object: the message plus its fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in STANDARD_RECORD_FIELDS:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging() -> None:
    """Make every root handler write JSON lines at LOG_LEVEL (default INFO)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for log_handler in root.handlers:
        log_handler.setFormatter(JsonFormatter())
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
