"""manage.py import_conversations --source zendesk|chatwoot EXPORT.json"""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from privacy.history_import import SOURCES, conversations_import


class Command(BaseCommand):
    help = "Import past conversations from a Zendesk or Chatwoot JSON export onto the customers' threads."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--source", required=True, choices=SOURCES)

    def handle(self, *args, **options):
        try:
            with open(options["path"], encoding="utf-8") as fh:
                data = json.load(fh)
            report = conversations_import(source=options["source"], data=data)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{options['path']}: {exc}") from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise CommandError(f"{options['path']} is not a {options['source']} export ({exc!r}).") from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"{report['conversations']} conversations, {report['messages']} messages imported "
            f"({report['already_imported']} already there), {len(report['refused'])} refused."
        )
        for refused in report["refused"]:
            self.stdout.write(f"  conversation {refused['conversation']}: {refused['reason']}")
