"""Read S3 object-created notifications out of SQS message bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

# Where gallery.models.original_key stores originals; thumbnails live apart.
PHOTO_PREFIX = "photos/"


@dataclass(frozen=True)
class StoredObject:
    """An object S3 says was created, with its key decoded."""

    bucket: str
    key: str


class NotAnS3Event(ValueError):
    """The message body is neither an S3 notification nor SNS wrapping one."""


def objects_created(body: str | bytes, prefix: str = "") -> list[StoredObject]:
    """Return the objects under prefix that an SQS message says were created.

    The body is an S3 event, raw or inside an SNS envelope. S3's test event
    and records of other kinds, such as deletions, give nothing.
    """
    event = decode_object(body, "body")
    if event.get("Type") == "Notification" and "TopicArn" in event:
        event = decode_object(event.get("Message"), "SNS Message")
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise NotAnS3Event("no Records list")
    created = [stored for stored in map(object_created, records) if stored]
    return [stored for stored in created if stored.key.startswith(prefix)]


def decode_object(text: object, what: str) -> dict[str, Any]:
    if not isinstance(text, str | bytes):
        raise NotAnS3Event(f"{what} is not text")
    try:
        value = json.loads(text)
    except ValueError:
        raise NotAnS3Event(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise NotAnS3Event(f"{what} is not a JSON object")
    return value


def object_created(record: Any) -> StoredObject | None:
    """Return the object an S3 record names, or None for another kind."""
    try:
        source = record["eventSource"]
        event_name = record["eventName"]
        bucket = record["s3"]["bucket"]["name"]
        key = record["s3"]["object"]["key"]
    except (KeyError, TypeError):
        raise NotAnS3Event("a record lacks its source, name, bucket or key") from None
    if source != "aws:s3" or not all(isinstance(v, str) for v in (bucket, key)):
        raise NotAnS3Event("a record is not an S3 record")
    if not str(event_name).startswith("ObjectCreated:"):
        return None
    # S3 encodes keys like a form: spaces as "+" and the rest as %XX.
    return StoredObject(bucket=bucket, key=unquote_plus(key))
