import json

from django.core.management.base import BaseCommand, CommandError

from helpdesk.readiness import readiness_report


class Command(BaseCommand):
    help = "Exit 0 when this instance is ready (database, Redis, channel credentials decrypt), 1 if not."

    # A healthcheck runs this every few seconds: skip the system checks.
    requires_system_checks = []

    def handle(self, *args, **options):
        ok, checks = readiness_report()
        self.stdout.write(json.dumps({"ok": ok, "checks": checks}))
        if not ok:
            raise CommandError("Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"))
