import pytest

from cred_helper.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("1800", 1800), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400),
    ("1h0m5s", 3605), (" 10m ", 600),
])
def test_accepted_forms(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "30x", "-5m", "1.5h", "30m1h", "5mm", "1h 5m"])
def test_rejected_forms(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format():
    assert format_duration(5400) == "1h30m0s"
    assert format_duration(299) == "4m59s"
    assert format_duration(-3) == "0s"
