"""Speak every voice webhook in its call's language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from calls.languages import django_language
from calls.models import CallSession, is_call_sid
from calls.webhooks import unreadable


def call_language(request: HttpRequest) -> str:
    """The language the caller chose at the opening menu, else SECUREGATHER_LANGUAGE."""
    # The fallback URL answers when the database may be down: it never asks it.
    fallback = request.resolver_match is not None and request.resolver_match.url_name == "fallback"
    if settings.SECUREGATHER_OFFER_LANGUAGES and not fallback and not unreadable(request):
        sid = request.POST.get("CallSid", "")
        if not is_call_sid(sid):
            # No such call, and no query for it: the view refuses the request, and a NUL in it
            # would be an error out of PostgreSQL's driver before it got there.
            return settings.SECUREGATHER_LANGUAGE
        try:
            chosen = (
                CallSession.objects.filter(call_sid=sid).values_list("language", flat=True).first()
            )
        except DatabaseError:
            # The step itself will fail too, inside twiml_on_error: it apologises in this one.
            return settings.SECUREGATHER_LANGUAGE
        if chosen:
            return chosen
    return settings.SECUREGATHER_LANGUAGE


class CallLanguageMiddleware:
    """Activates the call's language for the views of the ``calls`` app, and only for them.

    Admin pages keep Django's LANGUAGE_CODE: the setting is about what callers hear.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            if getattr(request, "_call_language", None):
                translation.deactivate()

    def process_view(self, request: HttpRequest, view: Any, *args: Any) -> None:
        match = request.resolver_match
        if match is not None and match.app_name == "calls" and request.method == "POST":
            request._call_language = call_language(request)  # type: ignore[attr-defined]
            translation.activate(django_language(request._call_language))  # type: ignore[attr-defined]
