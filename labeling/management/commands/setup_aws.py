from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.aws_setup import AwsSetup, Plan


class Command(BaseCommand):
    help = (
        "Create or correct the S3 bucket, SNS topic, SQS queues and the bucket's "
        "notification that AWS mode needs; print what changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="only report what differs; change nothing, exit 1 on drift",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (settings.PHOTOS_BUCKET and settings.AWS_REGION):
            raise CommandError("Set PHOTOS_BUCKET and AWS_REGION first.")
        check = options["check"]
        changes = AwsSetup(Plan.from_settings(), apply=not check).run()
        if not changes:
            self.stdout.write("Everything is set up; nothing to change.")
            return
        self.stdout.write("Differences:" if check else "Changed:")
        for change in changes:
            self.stdout.write(f"  {change}")
        if check:
            raise CommandError(f"{len(changes)} difference(s); run setup_aws.")
