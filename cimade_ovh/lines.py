"""The two kinds of lines, by the name lines.ini gives them, and what lines.ini may get wrong about a group's line."""

from .config import script_command
from .ovhapi import LINE_MISTAKES, OvhFailure, as_failure, parallel
from .phones import format_phone
from .queues import QueueLine, QueueSnapshot
from .redirect import RedirectLine, RedirectSnapshot

LINE_KINDS = {"redirect": RedirectLine, "queue": QueueLine}
SNAPSHOT_KINDS = {"redirect": RedirectSnapshot, "queue": QueueSnapshot}
KIND_WORDS = {"queue": ("easyHunting", "une file d'appels"), "redirect": ("redirect", "une redirection")}
REVEALING = ("not_found", "not_granted")  # OVH's answers that a mistake of lines.ini may be behind.


def named_mistake(client, group, call, *args):
    """call(*args); when OVH does not know the group's line or refuses it, raise the mistake of lines.ini behind it.

    OVH is asked more only after such a failure: the happy path costs no request (see line_mistake).
    """
    try:
        return call(*args)
    except Exception as error:
        if isinstance(error, OvhFailure) and error.reason in LINE_MISTAKES or as_failure(error).reason not in REVEALING:
            raise
        mistake = line_mistake(client, group)
        if mistake is None:
            raise
        raise mistake from error


def line_mistake(client, group):
    """The OvhFailure naming what lines.ini gets wrong about the group (billing account, kind, number), or None.

    It reads what the key may (create_consumer_key.py asks for it): the billing accounts, and each one's
    queues and redirects. None when OVH has the line as lines.ini says, or when the key cannot tell.
    """
    import ovh.exceptions

    def listed(path):
        try:
            return client.get(path)
        except (ovh.exceptions.NotGrantedCall, ovh.exceptions.ResourceNotFoundError):
            return None

    account, number, check = group.billing_account, group.number, script_command("index.py", "--check")
    accounts = listed("/telephony")
    if accounts is not None and account not in accounts:
        return OvhFailure(
            "unknown_account",
            f"OVH ne connaît pas le compte de facturation « {account} » (billing_account dans lines.ini) : recopiez "
            f"celui du numéro depuis l'espace client OVH (Télécom > Téléphonie), puis relancez {check}.",
        )
    found = dict(
        zip(
            KIND_WORDS,
            parallel(*[lambda s=service: listed(f"/telephony/{account}/{s}") for service, _ in KIND_WORDS.values()]),
            strict=True,
        )
    )
    other = "redirect" if group.kind == "queue" else "queue"
    if found[other] is not None and number in found[other]:
        return OvhFailure(
            "wrong_kind",
            f"ce numéro est {KIND_WORDS[other][1]} chez OVH : kind = {other} ? Corrigez kind dans lines.ini, puis "
            f"relancez {check}.",
        )
    if None not in found.values() and number not in found[group.kind]:
        return OvhFailure(
            "unknown_number",
            f"OVH ne connaît pas le numéro {format_phone(number)} dans le compte de facturation {account} : "
            f"vérifiez number (et billing_account) dans lines.ini, puis relancez {check}.",
        )
    return None
