from django.test import override_settings

from monitoring.checks import check_metrics_access


def test_listed_addresses_and_networks_pass():
    with override_settings(
        SECUREGATHER_METRICS_ADDRESSES=["127.0.0.1", "10.0.0.0/8", "::1"],
        SECUREGATHER_METRICS_TOKEN="t" * 32,
    ):
        assert check_metrics_access() == []


def test_e001_an_entry_that_is_no_address():
    with override_settings(SECUREGATHER_METRICS_ADDRESSES=["127.0.0.1", "prometheus.internal"]):
        (error,) = check_metrics_access()
    assert error.id == "monitoring.E001"
    assert "'prometheus.internal'" in error.msg


def test_w001_a_short_token():
    with override_settings(SECUREGATHER_METRICS_TOKEN="short"):
        (warning,) = check_metrics_access()
    assert warning.id == "monitoring.W001"
    assert "short" not in warning.msg.replace("a short token", "")
