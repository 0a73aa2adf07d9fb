"""Phone numbers and first names as volunteers type them: checked, turned into OVH's form, shown or masked."""

import re
import unicodedata


class PhoneError(ValueError):
    """A number a volunteer typed that we cannot use; the message says why, in French."""


# The overseas departments share the French numbering plan but not its country code: the national number
# 0692 12 34 56 is +262 692 12 34 56 (00262692123456), never +33. Sources: ARCEP, "La numérotation outre-mer"
# (codes 262, 590, 594, 596) and its press release of 24 July 2006 on Mayotte (+262 269…, mobiles 0639);
# Wikipedia, "Numéro de téléphone en France" (the prefixes); libphonenumber's metadata for RE, YT, GP, GF and
# MQ (ITU E.164 codes, and the newer 0263, 0691, 0697 blocks). Saint-Pierre-et-Miquelon does not follow
# this rule (05 08 41 23 45 is +508 41 23 45): refused. Wallis-et-Futuna, New Caledonia and French Polynesia
# (+681, +687, +689) are outside the French plan: refused like every foreign number.
OVERSEAS_CODES = {
    "0262": "262", "0263": "262", "0692": "262", "0693": "262",  # La Réunion.
    "0269": "262", "0639": "262",  # Mayotte.
    "0590": "590", "0690": "590", "0691": "590",  # Guadeloupe, Saint-Martin, Saint-Barthélemy.
    "0594": "594", "0694": "594",  # Guyane.
    "0596": "596", "0696": "596", "0697": "596",  # Martinique.
}  # fmt: skip
# Inside Mayotte's 0639, ARCEP reserves 06 39 98 xx xx for fiction: it rings no one, and this project's demo
# and test numbers write it +33 6 39 98, as FICTIONAL_PREFIXES does.
FICTION_BLOCK = "063998"
FRENCH_CODES = "|".join(["33", *sorted(set(OVERSEAS_CODES.values()))])  # 33|262|590|594|596, for regexes.


def country_code(national):
    """The country code of a national number 0…: 33, or an overseas department's (0692… → 262)."""
    if national.startswith(FICTION_BLOCK):
        return "33"
    return OVERSEAS_CODES.get(national[:4], "33")


def normalize_phone(text):
    """Turn what a person typed or pasted into OVH's form 0033… (00262…, 00590… overseas), or raise PhoneError."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc") and not c.isspace())
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)  # ٠٦… (Arabic keypads) → 06…
    text = re.sub(r"[.\-/_]", "", text)
    if not text:
        raise PhoneError("Indiquez le numéro de téléphone sur lequel vous allez répondre.")
    text = re.sub(rf"^((?:\+|00)(?:{FRENCH_CODES}))\(0\)", r"\1", text)
    text = text.replace("(", "").replace(")", "")
    wrong = sorted(set(re.sub(r"[\d+]", "", text)))
    if wrong or "+" in text[1:]:
        shown = " ".join(f"« {c} »" for c in wrong) or "« + »"
        raise PhoneError(f"Le numéro ne doit contenir que des chiffres ; il contient {shown}.")
    international = re.match(rf"(?:\+|00)({FRENCH_CODES})", text)
    if international:
        typed_code = international[1]
        national = "0" + text[international.end() :]
        if national.startswith("00"):
            national = national[1:]
    elif text.startswith(("+", "00")):
        raise PhoneError("Seuls les numéros français sont acceptés (06…, 07…, 01… ou +33…).")
    else:
        typed_code, national = None, text
    if not national.startswith("0") and len(national) == 9:
        raise PhoneError("Le numéro doit commencer par 0 (par exemple 06 12 34 56 78) ou par +33.")
    if len(national) < 10:
        raise PhoneError(
            f"Le numéro est trop court : {len(national)} chiffres au lieu de 10. "
            "Les numéros courts ne peuvent pas recevoir les appels."
        )
    if len(national) > 10:
        raise PhoneError(f"Le numéro est trop long : {len(national)} chiffres au lieu de 10.")
    if not national.startswith("0"):
        raise PhoneError("Le numéro doit commencer par 0 (par exemple 06 12 34 56 78) ou par +33.")
    if national.startswith("08"):
        raise PhoneError(
            "Les numéros spéciaux en 08 ne peuvent pas recevoir les appels : donnez un numéro en 06, 07, 01…"
        )
    if national[1] not in "12345679":
        raise PhoneError("Ce numéro n'existe pas en France : il doit commencer par 01 à 07 ou 09.")
    if national.startswith("0508"):
        raise PhoneError(
            "Les numéros de Saint-Pierre-et-Miquelon (05 08…) ne sont pas acceptés : "
            "donnez un numéro de métropole ou d'un département d'outre-mer."
        )
    if typed_code not in (None, "33", OVERSEAS_CODES.get(national[:4])):  # +262, then a mainland number.
        raise PhoneError("Seuls les numéros français sont acceptés (06…, 07…, 01… ou +33…).")
    return "00" + country_code(national) + national[1:]


def national_phone(number):
    """The national form 0… of an OVH number of the French plan (0033…, 00262…), or "" for any other."""
    found = re.fullmatch(rf"00({FRENCH_CODES})(\d{{9}})", number or "")
    if found and country_code("0" + found[2]) == found[1]:
        return "0" + found[2]
    return ""


def format_phone(number):
    """Show an OVH number the French way: 0033612345678 → 06 12 34 56 78, 00262692123456 → 06 92 12 34 56."""
    national = national_phone(number)
    if national:
        return " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return number or ""


MAX_FIRST_NAME = 30


class FirstNameError(ValueError):
    """A first name a volunteer typed that we cannot show; the message says why, in French."""


def clean_first_name(text):
    """Tidy an optional first name (spaces, line breaks, invisible characters); FirstNameError if it is not a name.

    A line break is a space; a name without a letter (only accents or punctuation) is none.
    """
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(" " if c.isspace() else c for c in text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc"))
    name = " ".join(text.split())
    if len(name) > MAX_FIRST_NAME:
        raise FirstNameError(f"Le prénom est trop long : {MAX_FIRST_NAME} caractères au plus.")
    if any(not (c.isalpha() or unicodedata.category(c).startswith("M") or c in " '’-.") for c in name):
        raise FirstNameError("Le prénom ne peut contenir que des lettres, des espaces, des apostrophes et des tirets.")
    if name and not any(c.isalpha() for c in name):
        raise FirstNameError("Le prénom doit contenir au moins une lettre.")
    return name


def mask_phone(number):
    """A number shown to everyone: only its first and last pairs, 0033612345678 → 06 •• •• •• 78."""
    shown = format_phone(number).split(" ")
    if len(shown) == 5:
        return " ".join([shown[0], "••", "••", "••", shown[-1]])
    return "•" * max(0, len(number) - 2) + number[-2:]
