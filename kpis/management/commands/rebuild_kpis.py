from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kpis.services import kpi_rollup_days


class Command(BaseCommand):
    help = "Recompute the daily KPI rollups of the days [--from, --to) (today always stays live)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="end", help="Day after the last one, YYYY-MM-DD (default: today).")

    def handle(self, *args, start, end, **options):
        try:
            first = date.fromisoformat(start)
            stop = date.fromisoformat(end) if end else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"Dates are YYYY-MM-DD: {exc}") from exc
        if first >= stop:
            raise CommandError("--from must be before --to.")
        rows = kpi_rollup_days(start=first, end=stop)
        self.stdout.write(f"Rebuilt KPI rollups for {first} .. {stop} (exclusive): {rows} rows.")
