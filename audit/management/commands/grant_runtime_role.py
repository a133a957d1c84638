from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from audit.roles import RoleError, grant_runtime_role


class Command(BaseCommand):
    help = (
        "Grant ROLE, the database role the service runs as, what serving needs on every table "
        "and nothing more: on the audit log, SELECT and INSERT only. Run it as the tables' owner "
        "(PostgreSQL only), after every migrate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the runtime role: it must exist and own nothing")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            statements = grant_runtime_role(connections[options["database"]], options["role"])
        except RoleError as exc:
            raise CommandError(str(exc)) from None
        if options["verbosity"] >= 2:
            for statement in statements:
                self.stdout.write(statement)
        self.stdout.write(
            self.style.SUCCESS(f"{options['role']} holds the runtime privileges on every table.")
        )
