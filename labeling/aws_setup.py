"""Create or check the AWS resources behind AWS mode; report what differs.

The bucket keeps photos private and announces new ones to an SNS topic; the
topic feeds an SQS queue that the worker consumes, with a dead-letter queue
for notifications that can never be handled. Celery's tasks have a queue and
dead-letter queue of their own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from django.conf import settings

from labeling.events import PHOTO_PREFIX

logger = logging.getLogger(__name__)

NOTIFICATION_ID = "photosite-new-photos"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
OWNERSHIP_CONTROLS = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
ENCRYPTION = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
}


@dataclass(frozen=True)
class Plan:
    """The names and limits the resources should have."""

    region: str
    bucket: str
    topic: str
    events_queue: str
    events_dlq: str
    tasks_queue: str
    tasks_dlq: str
    cors_origins: tuple[str, ...] = ()
    max_receives: int = 5
    events_visibility: int = 60
    tasks_visibility: int = 300
    prefix: str = PHOTO_PREFIX

    @classmethod
    def from_settings(cls) -> Plan:
        return cls(
            region=settings.AWS_REGION,
            bucket=settings.PHOTOS_BUCKET,
            topic=settings.PHOTO_EVENTS_TOPIC,
            events_queue=settings.PHOTO_EVENTS_QUEUE,
            events_dlq=settings.PHOTO_EVENTS_DLQ,
            tasks_queue=settings.PHOTO_TASKS_QUEUE,
            tasks_dlq=settings.PHOTO_TASKS_DLQ,
            cors_origins=tuple(settings.PHOTOS_CORS_ORIGINS),
            max_receives=settings.SQS_MAX_RECEIVES,
            events_visibility=settings.PHOTO_EVENTS_VISIBILITY_SECONDS,
            tasks_visibility=settings.PHOTO_TASKS_VISIBILITY_SECONDS,
        )


def aws_client(service: str) -> Any:
    """Return a client for the service in the configured region and endpoint."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=settings.AWS_REGION or None,
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def same_json(current: str | None, desired: dict[str, Any]) -> bool:
    """Tell whether a JSON document AWS holds says what desired says."""
    return current is not None and normalized(json.loads(current)) == normalized(
        desired
    )


def normalized(value: Any) -> Any:
    # AWS may hand back a one-item list as the item, and numbers as text.
    if isinstance(value, list):
        items = [normalized(item) for item in value]
        return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
    if isinstance(value, dict):
        return {key: normalized(item) for key, item in value.items()}
    return str(value)


class AwsSetup:
    """Bring the resources in line with a plan, or only list what differs."""

    def __init__(self, plan: Plan, apply: bool = True) -> None:
        self.plan = plan
        self.apply = apply
        self.changes: list[str] = []
        self.s3 = aws_client("s3")
        self.sns = aws_client("sns")
        self.sqs = aws_client("sqs")
        self.account = aws_client("sts").get_caller_identity()["Account"]

    def run(self) -> list[str]:
        """Create or correct each resource in turn; return what was changed."""
        plan = self.plan
        bucket_exists = self.ensure_bucket()
        topic_arn = self.ensure_topic()
        events_dlq_arn = self.ensure_queue(plan.events_dlq, self.dlq_attributes())
        events_arn = self.arn("sqs", plan.events_queue)
        self.ensure_queue(
            plan.events_queue,
            {
                "VisibilityTimeout": str(plan.events_visibility),
                "RedrivePolicy": self.redrive_policy(events_dlq_arn),
                "Policy": json.dumps(self.queue_policy(events_arn, topic_arn)),
                "SqsManagedSseEnabled": "true",
            },
        )
        self.ensure_subscription(topic_arn, events_arn)
        tasks_dlq_arn = self.ensure_queue(plan.tasks_dlq, self.dlq_attributes())
        self.ensure_queue(
            plan.tasks_queue,
            {
                "VisibilityTimeout": str(plan.tasks_visibility),
                "RedrivePolicy": self.redrive_policy(tasks_dlq_arn),
                "SqsManagedSseEnabled": "true",
            },
        )
        if bucket_exists:
            self.ensure_notification(topic_arn)
        return self.changes

    def change(self, description: str, action: Callable[[], object]) -> None:
        """Record a difference, and remove it unless only checking."""
        self.changes.append(description)
        if self.apply:
            action()
            logger.info("AWS setup: %s", description)

    def arn(self, service: str, name: str) -> str:
        return f"arn:aws:{service}:{self.plan.region}:{self.account}:{name}"

    # The bucket

    def ensure_bucket(self) -> bool:
        """Create the bucket and lock it down; return whether it now exists."""
        bucket = self.plan.bucket
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            if error_code(error) not in {"404", "NoSuchBucket"}:
                raise
            self.change(f"create bucket {bucket}", self.create_bucket)
            if not self.apply:
                return False
        self.ensure_bucket_settings()
        return True

    def create_bucket(self) -> None:
        options: dict[str, Any] = {"Bucket": self.plan.bucket}
        if self.plan.region != "us-east-1":
            location = {"LocationConstraint": self.plan.region}
            options["CreateBucketConfiguration"] = location
        self.s3.create_bucket(**options)

    def ensure_bucket_settings(self) -> None:
        bucket = self.plan.bucket
        blocked = self.read(
            lambda: self.s3.get_public_access_block(Bucket=bucket),
            "PublicAccessBlockConfiguration",
            "NoSuchPublicAccessBlockConfiguration",
        )
        if blocked != PUBLIC_ACCESS_BLOCK:
            self.change(
                f"block all public access to bucket {bucket}",
                lambda: self.s3.put_public_access_block(
                    Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
                ),
            )
        ownership = self.read(
            lambda: self.s3.get_bucket_ownership_controls(Bucket=bucket),
            "OwnershipControls",
            "OwnershipControlsNotFoundError",
        )
        if ownership != OWNERSHIP_CONTROLS:
            self.change(
                f"disable ACLs on bucket {bucket}",
                lambda: self.s3.put_bucket_ownership_controls(
                    Bucket=bucket, OwnershipControls=OWNERSHIP_CONTROLS
                ),
            )
        encryption = self.read(
            lambda: self.s3.get_bucket_encryption(Bucket=bucket),
            "ServerSideEncryptionConfiguration",
            "ServerSideEncryptionConfigurationNotFoundError",
        )
        if not encryption:
            self.change(
                f"encrypt new objects in bucket {bucket} by default",
                lambda: self.s3.put_bucket_encryption(
                    Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION
                ),
            )
        self.ensure_cors()

    def ensure_cors(self) -> None:
        """Let the site's pages post uploads straight to the bucket."""
        if not self.plan.cors_origins:
            return
        bucket = self.plan.bucket
        rules = [
            {
                "AllowedOrigins": list(self.plan.cors_origins),
                "AllowedMethods": ["POST"],
                "AllowedHeaders": ["*"],
                "MaxAgeSeconds": 3000,
            }
        ]
        current = self.read(
            lambda: self.s3.get_bucket_cors(Bucket=bucket),
            "CORSRules",
            "NoSuchCORSConfiguration",
        )
        if normalized(current) != normalized(rules):
            self.change(
                f"allow uploads from {', '.join(self.plan.cors_origins)} "
                f"to bucket {bucket}",
                lambda: self.s3.put_bucket_cors(
                    Bucket=bucket, CORSConfiguration={"CORSRules": rules}
                ),
            )

    def read(self, call: Callable[[], Any], field: str, missing: str) -> Any:
        """Return one field of a Get call's answer, or None if it is unset."""
        try:
            return call()[field]
        except ClientError as error:
            if error_code(error) == missing:
                return None
            raise

    def ensure_notification(self, topic_arn: str) -> None:
        """Announce new objects under the photo prefix to the topic."""
        bucket = self.plan.bucket
        ours = {
            "Id": NOTIFICATION_ID,
            "TopicArn": topic_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {
                "Key": {"FilterRules": [{"Name": "prefix", "Value": self.plan.prefix}]}
            },
        }
        current = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        topics = current.get("TopicConfigurations", [])
        found = [t for t in topics if t.get("Id") == NOTIFICATION_ID]
        if found and same_notification(found[0], ours):
            return
        others = [t for t in topics if t.get("Id") != NOTIFICATION_ID]
        # The whole configuration is replaced, so others' entries are kept.
        wanted = {**current, "TopicConfigurations": [*others, ours]}
        self.change(
            f"announce new objects under {self.plan.prefix} in bucket {bucket} "
            f"to topic {self.plan.topic}",
            lambda: self.s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=wanted
            ),
        )

    # The topic and the queues

    def ensure_topic(self) -> str:
        """Create the topic S3 publishes to and let the bucket publish."""
        topic_arn = self.arn("sns", self.plan.topic)
        try:
            attributes = self.sns.get_topic_attributes(TopicArn=topic_arn)
        except ClientError as error:
            if error_code(error) != "NotFound":
                raise
            self.change(
                f"create topic {self.plan.topic}",
                lambda: self.sns.create_topic(Name=self.plan.topic),
            )
            if not self.apply:
                return topic_arn
            attributes = self.sns.get_topic_attributes(TopicArn=topic_arn)
        policy = self.topic_policy(topic_arn)
        if not same_json(attributes["Attributes"].get("Policy"), policy):
            self.change(
                f"let bucket {self.plan.bucket} publish to topic {self.plan.topic}",
                lambda: self.sns.set_topic_attributes(
                    TopicArn=topic_arn,
                    AttributeName="Policy",
                    AttributeValue=json.dumps(policy),
                ),
            )
        return topic_arn

    def ensure_queue(self, name: str, wanted: dict[str, str]) -> str:
        """Create the queue or correct its attributes; return its ARN."""
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            if error_code(error) not in {
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            }:
                raise
            self.change(
                f"create queue {name}",
                lambda: self.sqs.create_queue(QueueName=name, Attributes=wanted),
            )
            return self.arn("sqs", name)
        current = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        differing = {
            key: value
            for key, value in wanted.items()
            if not same_attribute(current.get(key), value)
        }
        if differing:
            self.change(
                f"set {', '.join(sorted(differing))} of queue {name}",
                lambda: self.sqs.set_queue_attributes(
                    QueueUrl=url, Attributes=differing
                ),
            )
        return str(current["QueueArn"])

    def ensure_subscription(self, topic_arn: str, queue_arn: str) -> None:
        """Subscribe the events queue to the topic, without SNS's envelope."""
        subscription_arn = self.find_subscription(topic_arn, queue_arn)
        description = f"subscribe queue {self.plan.events_queue} to the topic"
        if subscription_arn is None:
            self.change(
                description,
                lambda: self.sns.subscribe(
                    TopicArn=topic_arn,
                    Protocol="sqs",
                    Endpoint=queue_arn,
                    Attributes={"RawMessageDelivery": "true"},
                    ReturnSubscriptionArn=True,
                ),
            )
            return
        attributes = self.sns.get_subscription_attributes(
            SubscriptionArn=subscription_arn
        )["Attributes"]
        if attributes.get("RawMessageDelivery") != "true":
            self.change(
                f"deliver raw messages to queue {self.plan.events_queue}",
                lambda: self.sns.set_subscription_attributes(
                    SubscriptionArn=subscription_arn,
                    AttributeName="RawMessageDelivery",
                    AttributeValue="true",
                ),
            )

    def find_subscription(self, topic_arn: str, queue_arn: str) -> str | None:
        try:
            pages = self.sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=topic_arn
            )
            for page in pages:
                for subscription in page["Subscriptions"]:
                    if subscription["Endpoint"] == queue_arn:
                        return str(subscription["SubscriptionArn"])
        except ClientError as error:
            if error_code(error) != "NotFound":
                raise
        return None

    # Documents

    def dlq_attributes(self) -> dict[str, str]:
        return {
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "SqsManagedSseEnabled": "true",
        }

    def redrive_policy(self, dlq_arn: str) -> str:
        return json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.plan.max_receives}
        )

    def topic_policy(self, topic_arn: str) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "BucketPublishesNewPhotos",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {
                        "ArnLike": {
                            "aws:SourceArn": f"arn:aws:s3:::{self.plan.bucket}"
                        },
                        "StringEquals": {"aws:SourceAccount": self.account},
                    },
                }
            ],
        }

    def queue_policy(self, queue_arn: str, topic_arn: str) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TopicDeliversPhotoEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }


def same_attribute(current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if wanted.startswith("{"):
        return same_json(current, json.loads(wanted))
    return current.lower() == wanted.lower()


def same_notification(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    # S3 answers "Prefix" where it was told "prefix".
    def rules(config: dict[str, Any]) -> set[tuple[str, str]]:
        found = config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        return {(rule["Name"].lower(), rule["Value"]) for rule in found}

    return (
        current.get("TopicArn") == wanted["TopicArn"]
        and set(current.get("Events", [])) == set(wanted["Events"])
        and rules(current) == rules(wanted)
    )
