from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts import lockout
from accounts.models import Account
from accounts.provisioning import record_account_command
from audit.system import command_actor
from keys.commands import DatabaseCommand

# The tutorial's demo caller: card ending 1234, PIN 4321.
DEMO_NUMBER, DEMO_BALANCE, DEMO_CARD, DEMO_PIN = "AC12345678", Decimal("12.55"), "1234", "4321"
# The number `simulate_call` calls from unless told otherwise (Twilio's test number).
DEMO_CALLER = "+15005550006"


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
        with transaction.atomic():
            created = seed_demo()
            # The demo's card and PIN are set afresh either way: a credential change, audited.
            fields = ["balance", "number", "credentials"] if created else ["balance", "credentials"]
            account = Account.objects.get(number=DEMO_NUMBER)
            record_account_command(account, "added" if created else "changed", fields)
            # A reset demo answers the next call: wrong PINs tried against the account, or from
            # the number simulate_call calls from, no longer lock it out. Each lift is audited.
            lifted = [
                row
                for target in (DEMO_NUMBER, DEMO_CALLER)
                for row in lockout.lift(target, by=command_actor(), command="seed_demo")
            ]
        for row in lifted:
            self.stdout.write(f"Lifted the lockout of the demo {row.scope}.")
        verb = "Created" if created else "Reset"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} demo account {DEMO_NUMBER} (balance {DEMO_BALANCE}); "
                "call with card 1234 and PIN 4321."
            )
        )
