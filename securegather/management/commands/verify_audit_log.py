from typing import Any

from django.core.management.base import BaseCommand, CommandError

from securegather.auditchain import verify_log


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain. Exits 0 when every row is intact, 1 naming the first "
        "row that was edited, deleted around or inserted out of band."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_log()
        for kid, count in sorted(report.unverifiable.items()):
            self.stderr.write(
                f"{count} row(s) signed under key {kid!r} cannot be checked: "
                "that key is not in the keyring. Missing key, not tampering."
            )
        if not report.intact:
            for problem in report.problems[1:]:
                self.stderr.write(f"also {problem}")
            raise CommandError(
                f"Audit log chain broken at {report.first_problem} "
                f"({len(report.problems)} problem(s) in {report.checked} rows)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit log intact: {report.checked} rows checked."))
