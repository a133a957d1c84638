from decimal import Decimal
from typing import Any

from accounts.models import Account
from securegather.commands import DatabaseCommand

# The tutorial's demo caller: card ending 1234, PIN 4321.
DEMO_NUMBER, DEMO_BALANCE, DEMO_CARD, DEMO_PIN = "AC12345678", Decimal("12.55"), "1234", "4321"


def seed_demo() -> bool:
    """Create the demo account, or reset its balance and credentials. True when created."""
    account, created = Account.objects.get_or_create(
        number=DEMO_NUMBER, defaults={"balance": DEMO_BALANCE}
    )
    account.balance = DEMO_BALANCE
    account.set_credentials(DEMO_CARD, DEMO_PIN)
    account.save()
    return created


class Command(DatabaseCommand):
    help = "Create (or reset) the tutorial's demo account: card 1234, PIN 4321 → AC12345678."

    def handle(self, *args: Any, **options: Any) -> None:
        created = seed_demo()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} demo account {DEMO_NUMBER} (balance {DEMO_BALANCE}); "
                "call with card 1234 and PIN 4321."
            )
        )
