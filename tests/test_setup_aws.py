import io
import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from tests.moto_server import BUCKET, Aws
from tests.test_health import run_site_code

pytestmark = pytest.mark.aws

EVENTS = "photosite-photo-events"


def setup_aws(*args: str) -> str:
    output = io.StringIO()
    call_command("setup_aws", *args, stdout=output)
    return output.getvalue()


def queue_attributes(aws: Aws, name: str) -> dict[str, str]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_it_creates_a_private_bucket(aws: Aws) -> None:
    setup_aws()

    s3 = aws.client("s3")
    block = s3.get_public_access_block(Bucket=BUCKET)
    assert all(block["PublicAccessBlockConfiguration"].values())
    encryption = s3.get_bucket_encryption(Bucket=BUCKET)
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)
    assert ownership["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]


def test_it_allows_browser_uploads_from_the_sites_origins(aws: Aws, settings) -> None:
    settings.PHOTOS_CORS_ORIGINS = ["https://photos.example.com"]

    setup_aws()

    rules = aws.client("s3").get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://photos.example.com"]
    assert rules[0]["AllowedMethods"] == ["POST"]


def test_it_gives_the_events_queue_a_dead_letter_queue(aws: Aws, settings) -> None:
    settings.SQS_MAX_RECEIVES = 4

    setup_aws()

    events = queue_attributes(aws, EVENTS)
    dlq = queue_attributes(aws, "photosite-photo-events-dlq")
    redrive = json.loads(events["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 4
    policy = json.loads(events["Policy"])["Statement"][0]
    assert policy["Principal"] == {"Service": "sns.amazonaws.com"}
    assert policy["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(EVENTS)
    tasks = queue_attributes(aws, "photosite-tasks")
    assert "photosite-tasks-dlq" in tasks["RedrivePolicy"]


def test_new_photos_reach_the_events_queue_but_thumbnails_do_not(aws: Aws) -> None:
    setup_aws()
    s3, sqs = aws.client("s3"), aws.client("sqs")
    url = sqs.get_queue_url(QueueName=EVENTS)["QueueUrl"]
    test_event = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]

    s3.put_object(Bucket=BUCKET, Key="thumbnails/1/a-480.jpg", Body=b"jpeg")
    s3.put_object(Bucket=BUCKET, Key="photos/1/a.jpg", Body=b"jpeg")

    messages = sqs.receive_message(
        QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10
    )["Messages"]
    assert "s3:TestEvent" in test_event[0]["Body"]
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])["Records"][0]
    assert record["s3"]["object"]["key"] == "photos%2F1%2Fa.jpg"


def test_a_second_run_changes_nothing(aws: Aws) -> None:
    first = setup_aws()

    second = setup_aws()

    assert "create bucket" in first
    assert "subscribe queue" in first
    assert second == "Everything is set up; nothing to change.\n"


def test_check_reports_drift_and_changes_nothing(aws: Aws) -> None:
    setup_aws()
    s3, sqs = aws.client("s3"), aws.client("sqs")
    s3.delete_public_access_block(Bucket=BUCKET)
    url = sqs.get_queue_url(QueueName=EVENTS)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})

    with pytest.raises(CommandError, match="2 difference"):
        setup_aws("--check")

    assert queue_attributes(aws, EVENTS)["VisibilityTimeout"] == "5"
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket=BUCKET)


def test_check_on_an_empty_account_creates_nothing(aws: Aws) -> None:
    output = io.StringIO()

    with pytest.raises(CommandError):
        call_command("setup_aws", "--check", stdout=output)

    assert f"create bucket {BUCKET}" in output.getvalue()
    assert "create queue photosite-photo-events" in output.getvalue()
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []


def test_the_iam_policy_names_no_wildcard_actions() -> None:
    path = Path(django_settings.BASE_DIR) / "docs" / "iam-policy.json"

    policy = json.loads(path.read_text())

    actions = [
        action
        for statement in policy["Statement"]
        for action in (
            [statement["Action"]]
            if isinstance(statement["Action"], str)
            else statement["Action"]
        )
    ]
    assert policy["Version"] == "2012-10-17"
    assert actions and not [action for action in actions if "*" in action]


def test_it_refuses_to_run_without_a_bucket(settings) -> None:
    settings.PHOTOS_BUCKET = ""

    with pytest.raises(CommandError, match="Set PHOTOS_BUCKET"):
        setup_aws()


def test_an_sqs_broker_names_its_queues_by_url() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['predefined_queues'])"
    )

    result = run_site_code(
        code, CELERY_BROKER_URL="sqs://", AWS_REGION="eu-west-1", AWS_ACCOUNT_ID="1"
    )

    assert "https://sqs.eu-west-1.amazonaws.com/1/photosite-photo-events" in (
        result.stdout
    ), result.stderr


def test_an_sqs_broker_without_an_account_refuses_to_start() -> None:
    result = run_site_code(
        "import django; django.setup()",
        CELERY_BROKER_URL="sqs://",
        AWS_REGION="eu-west-1",
        AWS_ACCOUNT_ID="",
    )

    assert "Set AWS_REGION and AWS_ACCOUNT_ID" in result.stderr
