import json

import pytest

from labeling import tasks
from labeling.consumers import handle_notification

BUCKET = "photosite-photos"


class ReceivedMessage:
    """Stand in for the kombu message the bootstep gets from SQS."""

    def __init__(self) -> None:
        self.delivery_info = {"sqs_message": {"MessageId": "m-1"}}
        self.acked = False
        self.rejected = False

    def ack(self) -> None:
        self.acked = True

    def reject(self, requeue: bool = False) -> None:
        assert not requeue, "requeueing would publish a copy with a fresh count"
        self.rejected = True


def notification(*keys: str) -> str:
    records = [
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
        }
        for key in keys
    ]
    return json.dumps({"Records": records})


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        tasks.label_stored_object, "delay", lambda *args: calls.append(args)
    )
    return calls


def consume(body: str) -> ReceivedMessage:
    message = ReceivedMessage()
    handle_notification(body, message)
    return message


def test_each_photo_is_queued_before_the_message_is_deleted(queued) -> None:
    message = consume(notification("photos/1/a+b.jpg", "photos/2/c.jpg"))

    assert queued == [(BUCKET, "photos/1/a b.jpg"), (BUCKET, "photos/2/c.jpg")]
    assert message.acked and not message.rejected


def test_an_unreadable_message_is_left_for_the_dead_letter_queue(queued) -> None:
    message = consume("{not json")

    assert queued == []
    assert message.rejected and not message.acked


def test_a_message_whose_tasks_cannot_be_queued_comes_back(monkeypatch) -> None:
    def broker_down(*args: str) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(tasks.label_stored_object, "delay", broker_down)

    message = consume(notification("photos/1/a.jpg"))

    assert message.rejected and not message.acked


def test_the_s3_test_event_is_deleted_without_queueing_anything(queued) -> None:
    message = consume(json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET}))

    assert queued == []
    assert message.acked
