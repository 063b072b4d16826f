"""The one rule for masking a caller's phone number, wherever a page, the API or a report shows it."""

import pytest

from hotline.ticket_view import mask_phone


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),  # a mobile number: the first three and the last four
        ("+8613812345678", "+86*******5678"),
        ("01062345678", "010****5678"),  # a landline with its area code, as long as a mobile
        ("62345678", "****5678"),  # a landline: the last four only
        ("5551234", "***1234"),  # the first three and the last four would be all seven
        ("12345", "*2345"),
        ("1234", "****"),  # four digits or fewer: none shown
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_phone_masked_to_its_last_four_digits_and_a_mobile_prefix(phone, masked):
    assert mask_phone(phone) == masked


def test_a_masked_phone_never_shows_the_whole_number():
    for length in range(1, 21):
        phone = ("1234567890" * 2)[:length]
        masked = mask_phone(phone)
        assert len(masked) == length
        assert len(masked) - masked.count("*") <= min(7, length - 1), phone
