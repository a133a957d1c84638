"""The client's address: the peer, unless settings declare the proxies in front; then the address
the outermost of them saw, never one the client wrote."""

from __future__ import annotations

import pytest
from axes.helpers import get_client_ip_address
from django.core.checks import run_checks
from django.test import override_settings

from audit.models import AuditEvent
from audit.origins import UNKNOWN_CLIENT, check_trusted_proxy, client_address, lockout_address

PROXY = "127.0.0.1"
BEHIND_NGINX = override_settings(
    SECUREGATHER_TRUSTED_PROXY_HEADER="X-Forwarded-For", SECUREGATHER_TRUSTED_PROXY_COUNT=1
)


def test_without_a_declared_proxy_the_address_is_the_peer_whatever_headers_say(rf):
    request = rf.get(
        "/",
        REMOTE_ADDR="192.0.2.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_X_REAL_IP="203.0.113.9",
        HTTP_FORWARDED="for=203.0.113.9",
    )
    assert client_address(request) == "192.0.2.1"


@BEHIND_NGINX
def test_behind_one_proxy_the_address_is_the_one_it_appended(rf):
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert client_address(request) == "198.51.100.4"


@BEHIND_NGINX
@pytest.mark.parametrize(
    "forged", ["203.0.113.9", "203.0.113.9, 203.0.113.10", "unknown", "not an address, ::1"]
)
def test_behind_one_proxy_what_the_client_wrote_before_it_is_never_read(rf, forged):
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.4")
    assert client_address(request) == "198.51.100.4"


@BEHIND_NGINX
def test_behind_one_proxy_an_ipv6_client_is_named_as_such(rf):
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="2001:db8::7")
    assert client_address(request) == "2001:db8::7"


@BEHIND_NGINX
def test_a_request_that_did_not_come_through_the_proxy_is_named_by_no_address(rf):
    assert client_address(rf.get("/", REMOTE_ADDR="192.0.2.1")) == ""


@BEHIND_NGINX
def test_another_header_than_the_declared_one_is_never_read(rf):
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_REAL_IP="203.0.113.9")
    assert client_address(request) == ""


# What nginx forwards when the client sent X-Forwarded-For itself: the client's header, then
# ", " and the client's own address, unquoted ($proxy_add_x_forwarded_for).
@BEHIND_NGINX
@pytest.mark.parametrize("forged", ['10.0.0.5, "', '"', '"10.0.0.5"', "10.0.0.5,", ",", "", " "])
def test_behind_one_proxy_a_quote_or_empty_entry_the_client_wrote_is_never_read(rf, forged):
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.4")
    assert client_address(request) == "198.51.100.4"


@BEHIND_NGINX
@pytest.mark.parametrize(
    "header", ['10.0.0.5, "', '"', "", " ", "10.0.0.5,", "10.0.0.5, unknown", '"198.51.100.4"']
)
def test_behind_one_proxy_no_address_where_the_proxy_writes_is_no_address(rf, header):
    # Not the peer (the proxy itself), and not an entry further left (the client's own).
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=header)
    assert client_address(request) == ""


@BEHIND_NGINX
def test_behind_one_proxy_an_ipv6_client_after_forged_entries_is_named_as_such(rf):
    request = rf.get("/", REMOTE_ADDR="::1", HTTP_X_FORWARDED_FOR='"[::1]", 10.0.0.5,2001:db8::7')
    assert client_address(request) == "2001:db8::7"


@override_settings(
    SECUREGATHER_TRUSTED_PROXY_HEADER="X-Forwarded-For", SECUREGATHER_TRUSTED_PROXY_COUNT=2
)
def test_behind_two_proxies_the_address_is_the_one_the_outer_one_appended(rf):
    # The load balancer appended the client, then nginx appended the load balancer.
    chain = "203.0.113.9, 198.51.100.4, 10.0.0.2"
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=chain)
    assert client_address(request) == "198.51.100.4"
    # Through nginx alone (the load balancer bypassed): too few hops, so no address is sure.
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert client_address(request) == ""
    # The load balancer saw a client that wrote a quote: its own entry is read, not the quote.
    chain = '10.0.0.5, ", 198.51.100.4, 10.0.0.2'
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=chain)
    assert client_address(request) == "198.51.100.4"


@pytest.mark.parametrize(
    "headers",
    [
        {"REMOTE_ADDR": "192.0.2.1"},
        {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.4"},
        {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "2001:db8::7"},
    ],
)
@pytest.mark.parametrize("declared", [False, True])
def test_django_axes_counts_under_the_same_address(rf, settings, headers, declared):
    if declared:
        settings.SECUREGATHER_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
        settings.SECUREGATHER_TRUSTED_PROXY_COUNT = 1
    request = rf.post("/admin/login/", **headers)
    assert get_client_ip_address(request) == (client_address(request) or UNKNOWN_CLIENT)


@BEHIND_NGINX
@pytest.mark.parametrize("header", [None, '10.0.0.5, "', "unknown"])
def test_django_axes_counts_requests_named_by_no_address_under_one_shared_address(rf, header):
    extra = {} if header is None else {"HTTP_X_FORWARDED_FOR": header}
    request = rf.post("/admin/login/", REMOTE_ADDR=PROXY, **extra)
    assert client_address(request) == ""
    assert get_client_ip_address(request) == lockout_address(request) == UNKNOWN_CLIENT


@pytest.mark.django_db
@BEHIND_NGINX
def test_audit_rows_name_the_client_not_the_proxy(rf):
    request = rf.post("/voice/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.4")
    event = AuditEvent.record("call_started", "info", request=request)
    event.refresh_from_db()
    assert event.origin_ip == "198.51.100.4"


@pytest.mark.django_db
@BEHIND_NGINX
def test_audit_rows_of_a_request_named_by_no_address_name_none(rf):
    request = rf.post("/voice/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR='10.0.0.5, "')
    event = AuditEvent.record("call_started", "info", request=request)
    event.refresh_from_db()
    assert event.origin_ip is None


def test_no_proxy_and_a_declared_proxy_both_pass_the_check(settings):
    assert check_trusted_proxy() == []
    settings.SECUREGATHER_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.SECUREGATHER_TRUSTED_PROXY_COUNT = 2
    assert check_trusted_proxy() == []


@pytest.mark.parametrize(("header", "count"), [("", 1), ("X-Forwarded-For", 0), ("", -1)])
def test_a_header_without_a_count_or_a_count_without_a_header_is_an_error(settings, header, count):
    settings.SECUREGATHER_TRUSTED_PROXY_HEADER = header
    settings.SECUREGATHER_TRUSTED_PROXY_COUNT = count
    (error,) = [m for m in run_checks() if m.id == "audit.E010"]
    assert f"(header {header!r}, count {count})" in error.msg


@pytest.mark.parametrize("header", ["X_Forwarded_For", "X-Forwarded-For:", "X Forwarded For"])
def test_a_header_that_is_no_header_name_is_an_error(settings, header):
    settings.SECUREGATHER_TRUSTED_PROXY_HEADER = header
    settings.SECUREGATHER_TRUSTED_PROXY_COUNT = 1
    (error,) = [m for m in run_checks() if m.id == "audit.E011"]
    assert repr(header) in error.msg
