"""Sealed values: a model field that stores keyring tokens and hands back masked objects.

A row's sealed value is bound to its purpose (``app.Model.field``) and to the record it belongs to
(the value of the field's ``context_field``), so a card token opens neither as a PIN nor under
another call. Reading the attribute gives a :class:`Sealed`, whose ``str`` and ``repr`` are masked:
admin pages, templates, log lines and tracebacks cannot print a digit or even the token by accident.
Opening is an explicit call on the model: ``instance.unseal("field")``.

A :class:`DigestField` holds a keyed digest of a sealed field's plaintext, for lookups. It names
its purpose and its source field, so key rotation finds every digest column and re-derives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import connection, models

from keys import hpke
from keys.keyring import Keyring, get_keyring, is_token, token_kid

MASK = "••••"
# Seals a process makes before it adds them to the key's count in the database (KeyRecord):
# one small write per 1,024 seals, never one per seal.
SEALS_PER_RECORD = 1024


class Sealed:
    """A token whose printed forms are masked. ``.token`` is for storage and rotation only."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    @property
    def key_id(self) -> str | None:
        return token_kid(self.token)

    @property
    def backend_kid(self) -> str | None:
        """The backend key a value sealed to the user's backend (keys.hpke) names, else None."""
        return hpke.token_kid(self.token)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        if (backend_kid := self.backend_kid) is not None:
            return f"<Sealed {MASK} backend_kid={backend_kid}>"
        return f"<Sealed {MASK} kid={self.key_id}>"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


if TYPE_CHECKING:
    # For the type checker: a SealedField's attribute holds a Sealed or None, never a str.
    _SealedCharField = models.CharField[Sealed | None, Sealed | None]
else:
    _SealedCharField = models.CharField


class SealedField(_SealedCharField):
    """A CharField of tokens; ``context_field`` names the field that identifies the record."""

    description = "A value sealed with the keyring (AES-256-GCM)"

    def __init__(self, *args: Any, context_field: str, **kwargs: Any) -> None:
        self.context_field = context_field
        kwargs.setdefault("max_length", 255)
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["context_field"] = self.context_field
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, *args: Any) -> Sealed | None:
        return None if value is None else Sealed(value)

    def to_python(self, value: Any) -> Sealed | None:
        # Whether it is a token is checked by the validators and on save, not here: Django's
        # deserializer would quote the value in its error, and it may be a plaintext.
        if value is None or isinstance(value, Sealed):
            return value
        return Sealed(str(value))

    def run_validators(self, value: Any) -> None:
        # Validate the stored token (its form and length), not the masked object.
        if isinstance(value, Sealed):
            if not _is_sealed(value.token):
                raise ValidationError("This is not a sealed value.", code="not_sealed")
            super().run_validators(value.token)

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        # A plain string, or one wrapped without being sealed (a fixture's), would be a
        # plaintext on its way to a column. Neither message quotes it.
        if not isinstance(value, Sealed):
            raise TypeError(f"{self.name} takes a Sealed value; use instance.seal()")
        if not _is_sealed(value.token):
            raise TypeError(f"{self.name} holds no sealed value: only instance.seal() makes one")
        return value.token

    def value_to_string(self, obj: models.Model) -> str:
        # Fixtures and serializers carry the token, never a plaintext.
        value = self.value_from_object(obj)
        return "" if value is None else value.token

    def purpose(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def context(self, instance: models.Model) -> str:
        return self.context_of(getattr(instance, self.context_field))

    def context_of(self, record: object) -> str:
        """The associated data for the record whose ``context_field`` holds ``record``."""
        return f"{self.purpose()}:{record}"

    def seal(self, instance: models.Model, plaintext: str) -> Sealed:
        ring = get_keyring()
        token = ring.seal(plaintext, self.context(instance))
        if not ring.recorded or ring.unrecorded_seals >= SEALS_PER_RECORD:
            record_key_use(ring)
        return Sealed(token)

    def open(self, instance: models.Model) -> str:
        value = getattr(instance, self.attname)
        if value is None:
            raise ValueError(f"{self.name} holds no sealed value")
        return get_keyring().open(value.token, self.context(instance))


def sealed_by(value: Sealed) -> str:
    """Which key sealed a value, as the audit log names it: a keyring key id, or
    "backend:<kid>" for the user's backend's key (keys.hpke)."""
    if (kid := value.backend_kid) is not None:
        return f"backend:{kid}"
    return value.key_id or ""


def _is_sealed(token: str) -> bool:
    """A keyring token, or one sealed to the user's backend (which nothing here opens)."""
    return is_token(token) or hpke.is_token(token)


def db_values(instance: models.Model, names: Sequence[str]) -> list[Any]:
    """The values of these columns of ``instance`` as the database takes them, as save() sends
    them, for statements written by hand: a SealedField gives its token, and refuses a plaintext,
    as it does on save."""
    values = []
    for name in names:
        field = instance._meta.get_field(name)
        assert isinstance(field, models.Field)  # a column of the model's own, not a relation
        values.append(field.get_db_prep_save(getattr(instance, name), connection))
    return values


def record_key_use(ring: Keyring) -> None:
    """Record the ring's check values (first use) and add this process's seals to the count."""
    from keys.models import KeyRecord  # models import this module: import at use

    KeyRecord.record_use(ring)


class DigestField(models.CharField):
    """A keyed digest ("kid:hex") of the plaintext of the SealedField named ``source``.

    With ``salt_field``, the digested message is ``"<salt_field value>|<plaintext>"``, so equal
    values on two records have different digests.
    """

    description = "A keyed HMAC-SHA256 digest of a sealed value"

    def __init__(self, *args: Any, purpose: str, source: str, salt_field: str = "", **kwargs: Any):
        self.digest_purpose, self.source, self.salt_field = purpose, source, salt_field
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(purpose=self.digest_purpose, source=self.source)
        if self.salt_field:
            kwargs["salt_field"] = self.salt_field
        return name, path, args, kwargs

    def message_of(self, plaintext: str, salt: object = None) -> str:
        return f"{salt}|{plaintext}" if self.salt_field else plaintext

    def message(self, instance: models.Model, plaintext: str) -> str:
        salt = getattr(instance, self.salt_field) if self.salt_field else None
        return self.message_of(plaintext, salt)

    def compute(self, instance: models.Model, plaintext: str, kid: str | None = None) -> str:
        """The digest of ``plaintext`` for this record, under ``kid`` (default: the primary)."""
        return get_keyring().digest(self.message(instance, plaintext), self.digest_purpose, kid)

    def source_field(self) -> SealedField:
        """The SealedField whose plaintext this field digests."""
        return field_of(self.model, self.source, SealedField)


F = TypeVar("F", bound=models.Field)


def field_of(model: type[models.Model] | models.Model, name: str, kind: type[F]) -> F:
    """The field ``name`` of ``model``, which must be a ``kind``: TypeError otherwise."""
    field = model._meta.get_field(name)
    if not isinstance(field, kind):
        raise TypeError(f"{name} is not a {kind.__name__}")
    return field


class SealedFieldsMixin(models.Model):
    """Model methods to seal into, open from and wipe SealedFields."""

    class Meta:
        abstract = True

    def seal(self, name: str, plaintext: str) -> Sealed:
        """Seal ``plaintext`` into the SealedField ``name``; the Sealed value it now holds."""
        sealed = field_of(self, name, SealedField).seal(self, plaintext)
        setattr(self, name, sealed)
        return sealed

    def seal_for_backend(self, name: str, plaintext: str) -> Sealed:
        """Seal ``plaintext`` into the SealedField ``name`` with HPKE to the user's backend
        (keys.hpke), bound to the field's name and the record: write-only from here on."""
        field = field_of(self, name, SealedField)
        sealed = Sealed(hpke.seal(plaintext, name, getattr(self, field.context_field)))
        setattr(self, name, sealed)
        return sealed

    def digest_of(self, name: str, plaintext: str, kid: str | None = None) -> str:
        """The DigestField ``name``'s digest of ``plaintext`` for this record, under ``kid``."""
        return field_of(self, name, DigestField).compute(self, plaintext, kid)

    def unseal(self, name: str) -> str:
        return field_of(self, name, SealedField).open(self)

    @classmethod
    def sealed_fields(cls) -> list[SealedField]:
        return [f for f in cls._meta.get_fields() if isinstance(f, SealedField)]

    @classmethod
    def digest_fields(cls) -> list[DigestField]:
        return [f for f in cls._meta.get_fields() if isinstance(f, DigestField)]
