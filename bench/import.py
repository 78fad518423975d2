"""Customer import benchmark: 100,000 customers from a CSV (issue 21: minutes, not hours).

Creates its own PostgreSQL database `helpdesk_bench_import` next to DATABASE_URL,
migrates it, writes a CSV of N customers (name, email, phone written the way
people write them, external id, two attributes; 1% of rows invalid, 2% repeating
an earlier row's email), then times, through privacy.importing as the command
and the admin's task run it: the dry run, the import, and a re-run of the same
file (which must change nothing).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/import.py
    .venv/bin/python bench/import.py --customers 20000      # quicker
"""

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from harness import BENCH_PRODUCTION_ENV, database_recreate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "helpdesk_bench_import"


def write_csv(path: Path, n: int) -> None:
    rng = random.Random(21)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Full name", "Email", "Phone", "CRM id", "Plan", "City"])
        for i in range(n):
            email = f"customer{i}@example.com"
            if i > 100 and rng.random() < 0.02:
                email = f"customer{rng.randrange(i)}@example.com"  # the same person twice
            phone = f"+34 6{i:08d}"
            if rng.random() < 0.01:
                phone = "not a phone"
            writer.writerow(
                [
                    f"Customer {i}",
                    email,
                    phone,
                    f"crm-{i}",
                    rng.choice(["gold", "silver"]),
                    rng.choice(["Madrid", "Sevilla", "Bilbao"]),
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ["DATABASE_URL"] = database_recreate(base_url=base, name=DB_NAME)
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
    os.environ.update(BENCH_PRODUCTION_ENV)
    os.environ.pop("REDIS_URL", None)  # nothing is sent: no broker needed
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

    import django

    django.setup()
    from django.core.management import call_command

    from customers.models import Customer, Identity
    from privacy.importing import csv_read, customers_import, mapping_guess

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_csv(path, args.customers)
        content = path.read_bytes()
        print(f"{args.customers:,} rows, {len(content) / 1e6:.1f} MB")
        headers, _ = csv_read(content)
        mapping = mapping_guess(headers)
        figures = {}
        for label, dry_run in (("dry run", True), ("import", False), ("re-run", False)):
            _headers, rows = csv_read(content)
            started = time.perf_counter()
            report = customers_import(rows=rows, mapping=mapping, dry_run=dry_run)
            seconds = time.perf_counter() - started
            figures[label] = (seconds, report.counts)
            print(f"{label:8s} {seconds:7.1f} s  {args.customers / seconds:8.0f} rows/s  {report.counts}")
        print(f"customers {Customer.objects.count():,}, identities {Identity.objects.count():,}")
        rerun = figures["re-run"][1]
        assert rerun["create"] == 0 and rerun["update"] == 0, "a re-run must change nothing"


if __name__ == "__main__":
    main()
