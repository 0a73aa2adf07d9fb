"""cimade_ovh.phones on its own: numbers and first names as volunteers type them. Pure: no simulator, no HTTP."""

import re

import pytest

from cimade_ovh.phones import (
    MAX_FIRST_NAME,
    FirstNameError,
    PhoneError,
    clean_first_name,
    format_phone,
    mask_phone,
    national_phone,
    normalize_phone,
)

MOBILE = "0033612345678"  # 06 12 34 56 78 in OVH's form.


# --- normalize_phone: what it understands -------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "0612345678",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "06/12/34/56/78",
        "06_12_34_56_78",
        "  06 12 34 56 78  ",
        "06\u00a012\u202f34\t56 78",  # No-break and narrow no-break spaces, a tab: pasted from a contact card.
        "\u202a06 12 34 56 78\u202c",  # Direction marks around a number copied from a right-to-left text.
        "\u200b0612345678\ufeff",  # Zero-width space, byte order mark.
        "+33612345678",
        "+33 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "+33(0)612345678",
        "0033 6 12 34 56 78",
        "0033 (0)6 12 34 56 78",
        "+33 06 12 34 56 78",  # The 0 kept after the country code.
        "0033612345678",  # Already OVH's form.
        "(06) 12 34 56 78",
        "٠٦١٢٣٤٥٦٧٨",  # Arabic-Indic digits, from an Arabic keypad.
        "۰۶ ۱۲ ۳۴ ۵۶ ۷۸",  # Extended Arabic-Indic (Persian) digits.
        "06 ١٢ ٣٤ ٥٦ ٧٨",  # Both kinds of digits in one number.
        "０６１２３４５６７８",  # Fullwidth digits.
    ],
)
def test_a_mobile_typed_or_pasted_any_usual_way_is_one_number(typed):
    assert normalize_phone(typed) == MOBILE


@pytest.mark.parametrize(
    "typed, number",
    [
        ("01 23 45 67 89", "0033123456789"),  # Île-de-France.
        ("04 65 71 00 99", "0033465710099"),
        ("05 12 34 56 78", "0033512345678"),
        ("07 12 34 56 78", "0033712345678"),
        ("09 12 34 56 78", "0033912345678"),
    ],
)
def test_every_french_prefix_but_08_is_accepted(typed, number):
    assert normalize_phone(typed) == number


@pytest.mark.parametrize(
    "typed, number",
    [
        ("0692 12 34 56", "00262692123456"),  # La Réunion: +262, never +33.
        ("+262 692 12 34 56", "00262692123456"),
        ("+262 (0)692 12 34 56", "00262692123456"),
        ("00262692123456", "00262692123456"),
        ("+33 692 12 34 56", "00262692123456"),  # +33 before an overseas number: the same number, mistyped.
        ("0262 12 34 56", "00262262123456"),
        ("0639 12 34 56", "00262639123456"),  # Mayotte's mobiles.
        ("0690 12 34 56", "00590690123456"),  # Guadeloupe.
        ("0594 12 34 56", "00594594123456"),  # Guyane.
        ("0696 12 34 56", "00596696123456"),  # Martinique.
    ],
)
def test_an_overseas_number_gets_its_departments_code(typed, number):
    assert normalize_phone(typed) == number


@pytest.mark.parametrize("typed", ["06 39 98 00 01", "+33 6 39 98 00 01", "+262 6 39 98 00 01", "00262639980001"])
def test_the_fiction_block_inside_mayottes_mobiles_stays_plus_33(typed):
    """06 39 98 xx xx is ARCEP's block for fiction: the project's demo and test numbers, always +33."""
    assert normalize_phone(typed) == "0033639980001"


# --- normalize_phone: what it refuses, and why (in French) --------------------


@pytest.mark.parametrize(
    "typed, gist",
    [
        (None, "Indiquez le numéro de téléphone"),
        ("", "Indiquez le numéro de téléphone"),
        (" \u00a0\u200b ", "Indiquez le numéro de téléphone"),
        ("-./", "Indiquez le numéro de téléphone"),
        ("06 12 34 56 7a", "ne doit contenir que des chiffres ; il contient « a »."),
        ("O6 12 34 56 7B", "il contient « B » « O »."),  # Each wrong character once, in order.
        ("06 12 34 56 78 ext 2", "« e » « t » « x »"),
        ("06+12345678", "il contient « + »."),
        ("+32 470 12 34 56", "Seuls les numéros français sont acceptés"),
        ("0044 20 7946 0000", "Seuls les numéros français sont acceptés"),
        ("00 00 00 00 00", "Seuls les numéros français sont acceptés"),
        ("+508 41 23 45", "Seuls les numéros français sont acceptés"),  # Saint-Pierre-et-Miquelon by its code.
        ("+262 6 12 34 56 78", "Seuls les numéros français sont acceptés"),  # +262, then a mainland number.
        ("6 12 34 56 78", "doit commencer par 0 (par exemple 06 12 34 56 78) ou par +33"),
        ("6123456789", "doit commencer par 0"),
        ("3949", "trop court : 4 chiffres au lieu de 10. Les numéros courts ne peuvent pas recevoir les appels."),
        ("06 12 34 56", "trop court : 8 chiffres au lieu de 10"),
        ("+33 6 12 34", "trop court : 6 chiffres au lieu de 10"),
        ("06 12 34 56 78 9", "trop long : 11 chiffres au lieu de 10"),
        ("+33 6 12 34 56 78 90", "trop long : 12 chiffres au lieu de 10"),
        ("08 00 12 34 56", "Les numéros spéciaux en 08 ne peuvent pas recevoir les appels"),
        ("+33 8 92 12 34 56", "Les numéros spéciaux en 08"),
        ("+33 00 12 34 56 78", "Ce numéro n'existe pas en France : il doit commencer par 01 à 07 ou 09."),
        ("05 08 41 23 45", "Les numéros de Saint-Pierre-et-Miquelon (05 08…) ne sont pas acceptés"),
    ],
)
def test_a_number_that_cannot_ring_is_refused_with_why(typed, gist):
    with pytest.raises(PhoneError, match=re.escape(gist)):
        normalize_phone(typed)


def test_a_refusal_is_a_value_error():
    """Callers that only know ValueError still catch it."""
    with pytest.raises(ValueError):
        normalize_phone("3949")


# --- Showing numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "number, national",
    [
        ("0033612345678", "0612345678"),
        ("0033639980001", "0639980001"),
        ("00262692123456", "0692123456"),
        ("00590690123456", "0690123456"),
        ("0033692123456", ""),  # +33 then an overseas block: not a number of the French plan.
        ("00262612345678", ""),  # +262 then a mainland block.
        ("00262639980001", ""),  # The fiction block is +33 only.
        ("0032470123456", ""),  # Belgian.
        ("003361234567", ""),  # One digit short.
        ("", ""),
        (None, ""),
    ],
)
def test_national_phone_is_the_0_form_of_the_french_plan_only(number, national):
    assert national_phone(number) == national


@pytest.mark.parametrize(
    "number, shown",
    [
        ("0033612345678", "06 12 34 56 78"),
        ("00262692123456", "06 92 12 34 56"),
        ("0033692123456", "0033692123456"),  # Not shown as if it were 06 92 12 34 56.
        ("0032470123456", "0032470123456"),  # Any other number as it is.
        ("", ""),
        (None, ""),
    ],
)
def test_format_phone_shows_the_french_way_or_as_it_is(number, shown):
    assert format_phone(number) == shown


@pytest.mark.parametrize(
    "number, masked",
    [
        ("0033612345678", "06 •• •• •• 78"),
        ("00262692123456", "06 •• •• •• 56"),
        ("0032470123456", "•••••••••••56"),  # Not French: all but its last two digits hidden.
        ("12", "12"),
        ("", ""),
    ],
)
def test_mask_phone_keeps_only_the_first_and_last_pairs(number, masked):
    assert mask_phone(number) == masked


def test_what_normalize_phone_returns_shows_as_typed():
    assert format_phone(normalize_phone("+33 (0)6.12.34.56.78")) == "06 12 34 56 78"
    assert format_phone(normalize_phone("0692123456")) == "06 92 12 34 56"


# --- First names ----------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, name",
    [
        (None, ""),
        ("", ""),
        ("   ", ""),
        ("Zoé", "Zoé"),
        ("  Marie   Claire ", "Marie Claire"),
        ("Jean-Pierre", "Jean-Pierre"),
        ("O'Brien", "O'Brien"),
        ("N’Diaye", "N’Diaye"),  # The typographic apostrophe of phones' keyboards.
        ("Anne-Marie D.", "Anne-Marie D."),
        ("Zoe\u0301", "Zoé"),  # A decomposed accent is composed.
        ("Ｍａｒｉｅ", "Marie"),  # Fullwidth letters.
        ("\u200bAli\ufeff", "Ali"),  # Invisible characters pasted with it.
        ("\u202bمحمد\u202c", "محمد"),  # Arabic letters, without their direction marks.
        ("Lê Văn Thủy", "Lê Văn Thủy"),
        ("Marie\nClaire", "Marie Claire"),  # A line break (a textarea, a paste) is a space.
        ("Marie\u2028Claire", "Marie Claire"),
        ("x" * MAX_FIRST_NAME, "x" * MAX_FIRST_NAME),
    ],
)
def test_a_first_name_is_tidied(typed, name):
    assert clean_first_name(typed) == name


@pytest.mark.parametrize(
    "typed, gist",
    [
        ("x" * (MAX_FIRST_NAME + 1), f"Le prénom est trop long : {MAX_FIRST_NAME} caractères au plus."),
        ("Marie 2", "Le prénom ne peut contenir que des lettres, des espaces, des apostrophes et des tirets."),
        ("<b>Marie</b>", "ne peut contenir que des lettres"),
        ("marie@example.org", "ne peut contenir que des lettres"),
        ("Marie 😀", "ne peut contenir que des lettres"),
        ("\u0301", "Le prénom doit contenir au moins une lettre."),
        ("-.'", "Le prénom doit contenir au moins une lettre."),
    ],
)
def test_what_is_not_a_first_name_is_refused_with_why(typed, gist):
    with pytest.raises(FirstNameError, match=re.escape(gist)):
        clean_first_name(typed)


def test_spaces_do_not_count_towards_the_length():
    assert clean_first_name("  " + "x" * MAX_FIRST_NAME + "  ") == "x" * MAX_FIRST_NAME
