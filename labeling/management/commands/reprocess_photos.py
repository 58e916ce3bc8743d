import sys
from argparse import ArgumentTypeError
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from labeling import services
from labeling.labelers import LABELERS
from labeling.tasks import queue_photo


def since_date(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD.")
        moment = datetime(day.year, day.month, day.day)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Label photos again, in the background or right here."

    def add_arguments(self, parser: CommandParser) -> None:
        chosen = parser.add_argument_group("which photos (at least one)")
        chosen.add_argument("--missing", action="store_true", help="never labelled")
        chosen.add_argument("--failed", action="store_true", help="labelling failed")
        chosen.add_argument("--all", action="store_true", help="every photo")
        parser.add_argument(
            "--since",
            type=since_date,
            help="uploaded on or after this date (YYYY-MM-DD)",
        )
        parser.add_argument("--user", default="", help="owner's username or id")
        parser.add_argument(
            "--labeler", default="", choices=sorted(LABELERS), help="labeler to use"
        )
        parser.add_argument(
            "--inline", action="store_true", help="label here instead of queueing"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count the photos, change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (options["missing"] or options["failed"] or options["all"]):
            raise CommandError(
                "Choose photos to reprocess: --missing, --failed or --all."
            )
        owner = options["user"]
        if owner and not self.user_exists(owner):
            raise CommandError(f"No user with username or id {owner!r}.")
        photo_ids = list(
            services.photos_to_reprocess(
                missing=options["missing"],
                failed=options["failed"],
                everything=options["all"],
                since=options["since"],
                owner=owner,
            ).values_list("pk", flat=True)
        )
        if options["dry_run"]:
            self.stdout.write(f"Would reprocess {len(photo_ids)} photo(s).")
            return
        done, failed = self.reprocess(photo_ids, options["labeler"], options["inline"])
        verb = "Labelled" if options["inline"] else "Queued"
        summary = f"{verb} {done} photo(s)" + (f", {failed} failed." if failed else ".")
        self.stdout.write(self.style.SUCCESS(summary))

    def user_exists(self, owner: str) -> bool:
        by_id = owner.isdigit() and User.objects.filter(pk=owner).exists()
        return by_id or User.objects.filter(username=owner).exists()

    def reprocess(
        self, photo_ids: list[int], labeler: str, inline: bool
    ) -> tuple[int, int]:
        done = failed = 0
        for number, photo_id in enumerate(photo_ids, start=1):
            if not inline:
                queue_photo(photo_id, labeler)
                done += 1
            elif services.relabel(photo_id, labeler):
                done += 1
            else:
                failed += 1
            self.show_progress(number, len(photo_ids))
        return done, failed

    def show_progress(self, number: int, total: int) -> None:
        if not sys.stderr.isatty() and number != total:
            return
        width = 30
        filled = width * number // total
        bar = "#" * filled + "-" * (width - filled)
        self.stderr.write(
            f"\r[{bar}] {number}/{total}", ending="\n" if number == total else ""
        )
