import json

import pytest

from labeling.events import NotAnS3Event, StoredObject, objects_created
from tests.aws_events import BUCKET, s3_record

TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:photosite-photo-events"


def s3_event(*keys: str) -> str:
    return json.dumps({"Records": [s3_record(key) for key in keys]})


def sns_envelope(message: str) -> str:
    """Wrap a message the way SNS delivers it to SQS by default."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC_ARN,
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2026-05-04T10:11:12.512Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


TEST_EVENT = json.dumps(
    {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-05-04T10:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
)


def test_raw_delivery_gives_the_new_object() -> None:
    body = s3_event("photos/7/4f2c.jpg")

    objects = objects_created(body)

    assert objects == [StoredObject(BUCKET, "photos/7/4f2c.jpg")]


def test_sns_envelope_is_unwrapped() -> None:
    body = sns_envelope(s3_event("photos/7/4f2c.jpg"))

    objects = objects_created(body)

    assert objects == [StoredObject(BUCKET, "photos/7/4f2c.jpg")]


@pytest.mark.parametrize("body", [TEST_EVENT, sns_envelope(TEST_EVENT)])
def test_s3_test_event_gives_nothing(body: str) -> None:
    assert objects_created(body) == []


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        ("photos/7/summer+holiday.jpg", "photos/7/summer holiday.jpg"),
        ("photos%2F7%2F4f2c.jpg", "photos/7/4f2c.jpg"),
        ("photos/7/caf%C3%A9+%E5%86%99%E7%9C%9F.jpg", "photos/7/café 写真.jpg"),
        ("photos/7/1%2B1%3D2.jpg", "photos/7/1+1=2.jpg"),
    ],
)
def test_keys_are_url_decoded(encoded: str, key: str) -> None:
    body = sns_envelope(s3_event(encoded))

    (stored,) = objects_created(body)

    assert stored.key == key


def test_several_records_give_every_object_in_order() -> None:
    body = s3_event("photos/1/a.jpg", "photos/2/b.png", "photos/3/c.webp")

    objects = objects_created(body)

    assert [stored.key for stored in objects] == [
        "photos/1/a.jpg",
        "photos/2/b.png",
        "photos/3/c.webp",
    ]


def test_objects_outside_the_prefix_are_left_out() -> None:
    body = s3_event("thumbnails/1/a-480.jpg", "photos/1/a.jpg")

    objects = objects_created(body, prefix="photos/")

    assert [stored.key for stored in objects] == ["photos/1/a.jpg"]


def test_records_of_other_kinds_are_left_out() -> None:
    records = [
        s3_record("photos/1/a.jpg", "ObjectRemoved:Delete"),
        s3_record("photos/1/b.jpg", "ObjectCreated:CompleteMultipartUpload"),
    ]

    objects = objects_created(json.dumps({"Records": records}))

    assert [stored.key for stored in objects] == ["photos/1/b.jpg"]


def test_bytes_are_read_like_text() -> None:
    body = s3_event("photos/1/a.jpg").encode()

    assert objects_created(body) == [StoredObject(BUCKET, "photos/1/a.jpg")]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "hello",
        b"\xff\xfe\x00garbage",
        "[]",
        "42",
        "null",
        '{"Records": "photos/1/a.jpg"}',
        '{"Message": "nothing about S3"}',
        json.dumps({"Records": [{"eventSource": "aws:s3"}]}),
        json.dumps({"Records": [{**s3_record("a.jpg"), "eventSource": "aws:sqs"}]}),
        json.dumps({"Records": [{**s3_record("a.jpg"), "s3": {"bucket": {}}}]}),
        json.dumps({"Records": ["photos/1/a.jpg"]}),
        sns_envelope("not json"),
        json.dumps({"Type": "Notification", "TopicArn": TOPIC_ARN}),
    ],
)
def test_garbage_is_refused(body: str | bytes) -> None:
    with pytest.raises(NotAnS3Event):
        objects_created(body)
