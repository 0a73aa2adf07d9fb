"""The OVH key's rules: what the consumer key must allow for the groups of lines.ini, and whether it does."""

import re

from .config import script_command
from .ovhapi import CURRENT_CREDENTIAL, explain_for_it


def rule(method, path):
    """One OVH access rule."""
    return {"method": method, "path": path}


def voicemail_rules(group, boxes=None):
    """The access rules to read the group's voicemail boxes, their messages and audio, and move messages.

    `boxes`: the group's boxes when known (voicemail.resolve_boxes); otherwise every box of its
    billing account (the key cannot read where the calls go before it exists). DELETE only for a
    group whose lines.ini sets keep_handled_days (stats.py deletes its old handled messages).
    """
    account = f"/telephony/{group.billing_account}"
    rules = [rule("GET", f"{account}/voicemail")]  # --check: is each box in the account?
    methods = ("GET", "POST", "DELETE") if group.keep_handled_days else ("GET", "POST")
    if boxes is None:
        return rules + [rule(method, f"{account}/voicemail/*") for method in methods]
    for box in boxes:
        directories = f"{account}/voicemail/{box}/directories"
        rules += [
            rule("GET", directories),  # The messages' ids, by folder.
            rule("GET", f"{directories}/*"),  # A message, and its audio (…/download).
            rule("POST", f"{directories}/*"),  # …/move: « Traité », « À traiter ».
            rule("GET", f"{account}/voicemail/{box}/settings"),  # Whether it loses messages (doNotRecord…).
        ]
        if group.keep_handled_days:
            rules.append(rule("DELETE", f"{directories}/*"))  # stats.py: handled messages, once kept long enough.
    return rules


def group_rules(group, sip_line=None, boxes=None):
    """The access rules one group of lines.ini needs: what index.py (page and --check) and stats.py call.

    Ids that OVH makes (agents, time conditions, calls) or may remake (the
    queue) are covered by a trailing `*`, one method at a time, inside the
    group's own service. A redirect group's SIP line is named exactly when
    known (`sip_line`); otherwise its billing account's lines are covered by
    `line/*` for GET and PUT (the key cannot read where the number goes
    before it exists: run the script again with the new key to narrow it).
    """
    account = f"/telephony/{group.billing_account}"
    if group.kind == "redirect":
        rules = [rule("GET", f"{account}/redirect/{group.number}")]
        if sip_line:
            line = f"{account}/line/{sip_line}"
            rules += [rule("GET", line), rule("GET", f"{line}/options"), rule("PUT", f"{line}/options")]
        else:
            rules += [rule("GET", f"{account}/line/*"), rule("PUT", f"{account}/line/*")]
        return rules + voicemail_rules(group, boxes)
    service = f"{account}/easyHunting/{group.number}"
    hunting, conditions = f"{service}/hunting", f"{service}/timeConditions/conditions"
    return [
        rule("GET", service),  # index.py --check
        rule("GET", f"{hunting}/queue"),  # The queue's id.
        rule("GET", f"{hunting}/queue/*"),  # Its agents, liveCalls, liveCalls/{id}, liveStatistics (stats.py).
        rule("GET", f"{hunting}/agent"),
        rule("GET", f"{hunting}/agent/*"),
        rule("POST", f"{hunting}/agent"),  # A new volunteer.
        rule("POST", f"{hunting}/agent/*"),  # agent/{id}/queue: attach them to the queue (the only POST there).
        rule("PUT", f"{hunting}/agent/*"),  # Status, ring time, description; a spare agent's new number.
        rule("GET", f"{service}/timeConditions"),  # Their settings: enabled, where calls go outside.
        rule("GET", conditions),
        rule("GET", f"{conditions}/*"),
        rule("POST", conditions),  # Open today's period.
        rule("PUT", f"{conditions}/*"),  # Move its end (the volunteers' planned end).
        rule("DELETE", f"{conditions}/*"),  # Close it.
    ] + voicemail_rules(group, boxes)


def mistake_rules(settings):
    """The rules that let the key tell what lines.ini gets wrong about a group (lines.line_mistake), read only.

    The billing accounts' names, and each one's lists of queue and redirect numbers: enough to name
    an unknown billing account, a number of the other kind or an unknown number, even for a group
    added after the key. A key without them still works; it only says less (check_coverage does
    not ask for them).
    """
    accounts = dict.fromkeys(group.billing_account for group in settings.groups.values())
    services = ("easyHunting", "redirect")
    return [rule("GET", "/telephony")] + [
        rule("GET", f"/telephony/{account}/{service}") for account in accounts for service in services
    ]


def required_rules(settings, sip_lines=None, boxes=None):
    """The access rules cimade-ovh needs for every group of `settings`, without duplicates.

    `sip_lines` maps a redirect group's slug to its SIP line, when known (see resolve_sip_lines);
    `boxes`, a group's slug to its voicemail boxes, when known (see voicemail.resolve_boxes).
    """
    sip_lines, boxes = sip_lines or {}, boxes or {}
    rules = [rule("GET", CURRENT_CREDENTIAL)]  # The page reads the key's expiration.
    for group in settings.groups.values():
        rules += group_rules(group, sip_lines.get(group.slug), boxes.get(group.slug))
    rules += mistake_rules(settings)
    unique = []
    for item in rules:
        if item not in unique:
            unique.append(item)
    return unique


def resolve_sip_lines(client, settings):
    """The SIP line of each redirect group that `client` can read; the others are left out."""
    sip_lines = {}
    for group in settings.groups.values():
        if group.kind != "redirect":
            continue
        try:
            redirect = client.get(f"/telephony/{group.billing_account}/redirect/{group.number}")
        except Exception:  # No key yet, no right, unknown number: fall back to line/*.
            continue
        if redirect.get("featureType") == "redirect" and redirect.get("destination"):
            sip_lines[group.slug] = redirect["destination"]
    return sip_lines


def rule_matches(pattern, path):
    """Whether a granted rule's path covers `path`, as OVH does: `*` matches any rest.

    `path` may itself end with `*` (a required rule): it is then covered only
    by a pattern that covers everything it could match.
    """
    regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    return re.fullmatch(regex, path) is not None


def missing_rules(granted, required):
    """The required rules that no granted rule covers."""
    return [
        need
        for need in required
        if not any(g.get("method") == need["method"] and rule_matches(g.get("path", ""), need["path"]) for g in granted)
    ]


def check_coverage(client, settings, verbose=True, skipped=(), boxes=None):
    """Print, in French, whether the key of `client` covers every group; return True when it does.

    With verbose=False (index.py --check), only the problems are printed. The `skipped` groups are
    not looked at: lines.ini is wrong about them, and the key follows from lines.ini once it is fixed.
    `boxes`: as in required_rules.
    """
    import ovh.exceptions

    try:
        credential = client.get(CURRENT_CREDENTIAL)
    except ovh.exceptions.NotGrantedCall:
        print("ERREUR : la clé OVH ne peut pas lire ses propres droits (GET /auth/currentCredential) ; "
              f"créez-en une nouvelle : {script_command('create_consumer_key.py')}")  # fmt: skip
        return False
    except Exception as error:
        print(f"ERREUR : impossible de lire les droits de la clé OVH. {explain_for_it(error)}")
        return False
    granted = credential.get("rules") or []
    sip_lines = resolve_sip_lines(client, settings)
    uncovered = []
    for group in settings.groups.values():
        if group.slug in skipped:
            continue
        missing = missing_rules(granted, group_rules(group, sip_lines.get(group.slug), (boxes or {}).get(group.slug)))
        if missing:
            uncovered.append(group.slug)
            print(f"ERREUR [{group.slug}] la clé OVH ne couvre pas ce groupe ; il lui manque :")
            for need in missing:
                print(f"    {need['method']:6} {need['path']}")
        elif verbose:
            print(f"ok     [{group.slug}] la clé OVH couvre ce groupe")
    broad = [g for g in granted if g.get("path") in ("/", "/*")]
    if broad:
        print("Attention : la clé OVH a des droits sur tout le compte (" + ", ".join(
            f"{g['method']} {g['path']}" for g in broad) + ") ; créez-en une plus restreinte.")  # fmt: skip
    if uncovered:
        print(
            f"La clé OVH ne couvre pas : {', '.join(uncovered)}. L'informatique doit créer une nouvelle clé : "
            + script_command("create_consumer_key.py")
        )
        return False
    return True
