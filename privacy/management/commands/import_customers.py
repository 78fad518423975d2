"""manage.py import_customers FILE.csv [--map column=field ...] [--dry-run] [--report out.csv]"""

import csv
import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from privacy.importing import csv_read, customers_import, mapping_guess, mapping_validate


class Command(BaseCommand):
    help = (
        "Import customers from a CSV file (name, emails, phones, external id, attributes). "
        "Columns are mapped by their header (see --show-mapping); --map column=field overrides, "
        "field being name, email, phone, external_id, ignore or attribute:<key>. Re-running the "
        "same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; write nothing.")
        parser.add_argument("--show-mapping", action="store_true", help="Print the mapping and stop.")
        parser.add_argument("--report", help="Write the per-row results to this CSV file.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, **options):
        try:
            with open(options["path"], "rb") as fh:
                content = fh.read()
            headers, rows = csv_read(content)
            mapping = mapping_guess(headers)
            for item in options["map"]:
                column, sep, target = item.partition("=")
                if not sep:
                    raise CommandError(f"--map {item}: write it as COLUMN=FIELD.")
                mapping[column] = target
            if options["show_mapping"]:
                self.stdout.write(json.dumps(mapping, indent=2, ensure_ascii=False))
                return
            mapping_validate(headers=headers, mapping=mapping)
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        total = max(0, content.count(b"\n") - 1 + (0 if content.endswith(b"\n") else 1))
        with tqdm(total=total, unit="row", file=sys.stderr, disable=options["verbosity"] == 0) as bar:
            report = customers_import(
                rows=rows,
                mapping=mapping,
                dry_run=options["dry_run"],
                progress=bar.update,
                batch_size=options["batch_size"],
            )
        if options["report"]:
            with open(options["report"], "w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["row", "action", "customer_id", "joins_row", "reason"])
                for row in report.rows:
                    writer.writerow(
                        [row.row, row.action, row.customer_id or "", row.joins_row or "", row.reason]
                    )
        prefix = "Dry run: would " if report.dry_run else ""
        counts = report.counts
        self.stdout.write(
            f"{prefix}create {counts['create']}, update {counts['update']}, leave {counts['unchanged']} "
            f"unchanged, refuse {counts['refused']} of {report.total} rows."
        )
        for row in report.rows:
            if row.action == "refused":
                self.stdout.write(f"  row {row.row}: refused: {row.reason}")
