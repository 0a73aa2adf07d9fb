"""Talking to OVH: the ovh client with deadlines, parallel requests, and why a request failed (for the page, for IT)."""

import contextvars
import re
import time
from string import Template

from .config import ConfigError, read_ini, script_command
from .files import os_error_text
from .log import log

OVH_TIMEOUT = (3.05, 8)  # Seconds to connect, then to wait for each answer: what a person will wait.
OVH_CONNECTIONS = 32  # Connections kept open to OVH: more than the requests a page makes at once.
# An action's OVH requests end within this: with the lock's 10 s and the mail's 5 s, a reply before 30 s,
# well before Apache gives up (FcgidIOTimeout 40 s).
ACTION_SECONDS = 15
DEADLINE = contextvars.ContextVar("deadline", default=None)  # The time.monotonic() by which OVH requests must end.


class OvhFailure(Exception):
    """OVH could not do what we asked; `reason` picks the French explanation, `detail` is for IT."""

    action = None  # The action OVH failed in, when the line knew it better than the button pressed ("add").

    def __init__(self, reason, detail, explanation=None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.explanation = explanation


RETRY_LATER = "Réessayez dans quelques minutes ; si cela dure, prévenez $contact."
OVH_FAILURES = {
    "config": ("Le fichier de configuration OVH (ovh.conf) est absent, incomplet ou erroné.", "Prévenez $contact."),
    "unreadable": (
        "Le fichier de configuration OVH (ovh.conf) est illisible par la page (droits du fichier).",
        "Prévenez $contact.",
    ),
    "unreachable": ("Impossible de joindre OVH.", RETRY_LATER),
    "timeout": ("OVH a mis trop de temps à répondre.", RETRY_LATER),
    "server": ("OVH a rencontré une erreur de son côté.", RETRY_LATER),
    "credential": (
        "La clé d'accès à OVH n'est plus valable (expirée ou révoquée).",
        "Prévenez $contact : il faut créer une nouvelle clé avec create_consumer_key.py.",
    ),
    "not_granted": (
        "La clé d'accès à OVH n'a pas les droits nécessaires pour ce groupe.",
        "Prévenez $contact : après l'ajout d'un groupe, il faut créer une nouvelle clé avec create_consumer_key.py.",
    ),
    "not_found": (
        "OVH ne connaît pas la ligne de ce groupe.",
        "Prévenez $contact : la configuration du groupe dans lines.ini est sans doute erronée.",
    ),
    "wrong_kind": (
        "La ligne de ce groupe n'est pas du type que lines.ini lui donne (kind).",
        "Prévenez $contact : il faut corriger le type du groupe (kind) dans lines.ini.",
    ),
    "unknown_account": (
        "OVH ne connaît pas le compte de facturation de ce groupe.",
        "Prévenez $contact : il faut corriger billing_account dans lines.ini.",
    ),
    "unknown_number": (
        "OVH ne connaît pas le numéro de ce groupe dans son compte de facturation.",
        "Prévenez $contact : il faut corriger number dans lines.ini.",
    ),
    "refused": ("OVH a refusé la demande.", "Réessayez ; si cela dure, prévenez $contact."),
    "signature": (
        "OVH refuse la signature des demandes de la page : sa configuration (ovh.conf) est erronée.",
        "Prévenez $contact : la clé « application_secret » de ovh.conf ne correspond pas à « application_key ».",
    ),
    "unexpected": (
        "La ligne de ce groupe n'est pas configurée chez OVH comme la page l'attend.",
        "Prévenez $contact.",
    ),
    "deadline": (
        "OVH répond trop lentement : la page s'est arrêtée avant d'avoir tout fait.",
        "Appuyez de nouveau sur le bouton pour finir ; si cela dure, prévenez $contact.",
    ),
    "vanished": (
        "OVH a perdu de vue un élément de la ligne pendant la lecture (un changement en cours dans l'espace client "
        "OVH, ou un incident chez OVH) : rien n'a été changé.",
        "Réessayez ; si cela dure, prévenez $contact.",
    ),
    "mismatch": (
        "OVH a répondu, mais l'état relu ne correspond pas à ce qui a été demandé.",
        "Vérifiez l'état ci-dessous et réessayez ; si cela dure, prévenez $contact.",
    ),
    "modules": (
        "La page ne trouve pas ses bibliothèques Python (.venv3) : Debian a sans doute changé de version de Python.",
        "Prévenez $contact : il faut recréer .venv3 (README, « Nouvelle version de Python »).",
    ),
    "internal": ("Une erreur inattendue s'est produite dans la page.", "Réessayez ; si cela dure, prévenez $contact."),
}
# A mistake of lines.ini that OVH's answers reveal (see lines.line_mistake): its detail is IT's sentence.
LINE_MISTAKES = ("wrong_kind", "unknown_account", "unknown_number")
NOT_A_REDIRECT = "Le numéro public de ce groupe ne renvoie pas vers une ligne SIP."
QUEUE_COUNT = "La ligne de ce groupe devrait avoir exactement une file d'appels ; OVH en montre {count}."
EXPLANATIONS = (NOT_A_REDIRECT, QUEUE_COUNT)  # The page's own explanations of a failure, besides OVH_FAILURES'.


def connect_ovh(endpoint, application_key, application_secret, consumer_key, timeout=None):
    """Return an ovh.Client; `endpoint` is an OVH name (ovh-eu) or a URL, such as the simulator's."""
    log.ready()  # urllib3 logs its warnings through logging: set the log up first, so that they reach it as ours do.
    import ovh
    import requests.adapters

    if endpoint.startswith(("http://", "https://")):
        # The ovh client only knows named endpoints: register the URL as a name of its own.
        ovh.client.ENDPOINTS.setdefault(endpoint, endpoint.rstrip("/"))
    client = ovh.Client(
        endpoint=endpoint,
        application_key=application_key,
        application_secret=application_secret,
        consumer_key=consumer_key,
        timeout=timeout or OVH_TIMEOUT,
    )
    # requests keeps 10 connections per host, fewer than a page's parallel requests: each one
    # more would be opened anew, and a new HTTPS connection to OVH costs two more round trips.
    adapter = deadline_adapter(requests.adapters.HTTPAdapter)(pool_maxsize=OVH_CONNECTIONS)
    for scheme in ("https://", "http://"):
        client._session.mount(scheme, adapter)
    return client


class LazyClient:
    """The ovh client, made on first use: a CGI page that shows a shared read never imports it."""

    def __init__(self, make):
        self._make = make

    def __getattr__(self, name):
        return getattr(self._make(), name)


def deadline_adapter(base):
    """A requests adapter class whose requests end by the DEADLINE of the action, if one is set."""
    import requests

    class DeadlineAdapter(base):
        def send(self, request, timeout=None, **kwargs):
            deadline = DEADLINE.get()
            if deadline is None:
                return super().send(request, timeout=timeout, **kwargs)
            left = deadline - time.monotonic()
            if left <= 0:
                raise OvhFailure("deadline", f"{request.method} {request.url} not sent: the action's time is up")
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            try:
                return super().send(request, timeout=(min(connect, left), min(read, left)), **kwargs)
            except requests.Timeout as error:
                if read < left:  # Not cut short by the deadline: OVH's own slowness.
                    raise
                raise OvhFailure("deadline", f"{request.method} {request.url}: {error!r}") from None

    return DeadlineAdapter


OVH_KEYS = ("application_key", "application_secret", "consumer_key")
PLACEHOLDERS = {"", "votre-application-key", "votre-application-secret", "votre-consumer-key"}  # ovh-example.conf's.


def ovh_conf_section(parser):
    """The endpoint an ovh.conf names, and the section that holds its keys: the endpoint's own, or [default]."""
    endpoint = parser.get("default", "endpoint", fallback="ovh-eu").strip()
    return endpoint, endpoint if parser.has_section(endpoint) else "default"


def read_ovh_conf(path, required=OVH_KEYS):
    """Read ovh.conf into connect_ovh's arguments; the `required` keys must be there."""
    parser = read_ini(path)
    endpoint, section = ovh_conf_section(parser)
    conf = {"endpoint": endpoint}
    for key in OVH_KEYS:
        conf[key] = parser.get(section, key, fallback="").strip()
        if key in required and not conf[key]:
            raise ConfigError(f"{path}, section [{section}] : la clé « {key} » manque ou est vide"
                              + misplaced(parser, endpoint, section, key))  # fmt: skip
    return conf


def misplaced(parser, endpoint, section, key):
    """When another section of ovh.conf holds `key`, the end of a sentence saying where it must go; else ""."""
    others = [s for s in parser.sections() if parser.get(s, key, fallback="").strip() not in PLACEHOLDERS]
    others = [s for s in others if s != section]
    if not others:
        return ""
    return (
        f" ; elle est dans la section [{others[0]}], que endpoint = {endpoint} ne lit pas : déplacez les clés de "
        f"l'application dans [{section}], puis relancez"
    )


def ovh_cause(error):
    """Why a request of the ovh client failed, in one word that the page and the command line each phrase."""
    import ovh.exceptions as oe
    import requests

    if isinstance(error, oe.HTTPError):
        return "timeout" if isinstance(wrapped(error), requests.Timeout) else "unreachable"
    if isinstance(error, oe.BadParametersError) and "Invalid signature" in str(error):
        return "signature"
    kinds = [
        (oe.InvalidRegion, "region"),
        (oe.InvalidKey, "key"),
        ((oe.InvalidCredential, oe.NotCredential), "credential"),
        (oe.Forbidden, "forbidden"),
        (oe.NotGrantedCall, "not_granted"),
        (oe.ResourceNotFoundError, "not_found"),
        ((oe.BadParametersError, oe.ResourceConflictError, oe.ResourceExpiredError), "refused"),
        (oe.APIError, "server"),
    ]
    return next((cause for classes, cause in kinds if isinstance(error, classes)), "other")


def wrapped(error):
    """What an exception of the ovh client wraps (requests' exception, the unknown endpoint), else the error itself."""
    return error.args[1] if len(error.args) > 1 else error


# The causes the page explains with another's words: OVH_FAILURES has no sentence of their own.
PAGE_REASONS = {"region": "config", "key": "credential", "forbidden": "credential", "other": "server"}


def ovh_failure(error):
    """Translate an exception of the ovh client into an OvhFailure."""
    cause = ovh_cause(error)
    if cause in ("timeout", "unreachable"):
        return OvhFailure(cause, repr(wrapped(error)))
    return OvhFailure(PAGE_REASONS.get(cause, cause), f"{type(error).__name__}: {error}")


def parallel(*calls):
    """Run independent OVH calls at once and return their results in order."""
    if len(calls) <= 1:
        return [call() for call in calls]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]  # With the DEADLINE.
        return [future.result() for future in futures]


def get_all(client, path, whole=False):
    """GET a collection of ids, then every item of it in parallel; an item deleted in between is left out.

    `whole`: such an item fails the read instead ("vanished"): an action must not act on a partial
    view, which a 404 of OVH's own (or a change in the manager at that instant) would give it.
    """
    ids = client.get(path)
    items = parallel(*[lambda i=i: unless_gone(client.get, f"{path}/{i}") for i in ids])
    lost = [i for i, item in zip(ids, items, strict=True) if item is None]
    if whole and lost:
        raise OvhFailure("vanished", f"{path} listed {lost}, then answered 404 for them")
    return [item for item in items if item is not None]


def unless_gone(call, *args):
    """call(*args), or None when OVH answers 404: an id remembered from an earlier request may be out of date."""
    import ovh.exceptions

    try:
        return call(*args)
    except ovh.exceptions.ResourceNotFoundError:
        return None


def describe_failure(failure, contact):
    """The French sentences that explain a failure to a volunteer."""
    explanation, advice = OVH_FAILURES[failure.reason]
    return failure.explanation or explanation, Template(advice).safe_substitute(contact=contact)


def is_explanation(text):
    """True for one of the page's own EXPLANATIONS ({count} being a number): a flash cookie's text must be one."""
    return any(re.fullmatch(re.escape(known).replace(r"\{count\}", r"\d{1,3}"), text) for known in EXPLANATIONS)


def as_failure(error):
    """Turn whatever went wrong while talking to OVH into an OvhFailure; a bug of the page's is "internal"."""
    if isinstance(error, OvhFailure):
        return error
    if isinstance(error, ConfigError):
        return OvhFailure("unreadable" if error.unreadable else "config", str(error))
    if type(error).__module__.startswith(("ovh", "requests")):
        return ovh_failure(error)
    if isinstance(error, ModuleNotFoundError) and error.name in ("ovh", "requests", "flup"):
        import sys

        return OvhFailure("modules", f"{error} (.venv3 has no packages for Python {sys.version.split()[0]})")
    import traceback

    return OvhFailure("internal", "".join(traceback.format_exception(error)))


CURRENT_CREDENTIAL = "/auth/currentCredential"


# What IT reads on the command line for each cause of ovh_cause; a cause not named here is OVH's own error.
IT_EXPLANATIONS = {
    "region": "endpoint = {inner} dans ovh.conf n'est pas un nom connu du client ovh : mettez ovh-eu (OVH Europe), "
    "ou l'adresse http://… d'un simulateur, puis relancez.",
    "timeout": "OVH n'a pas répondu à temps ({inner_kind}) : réessayez dans quelques minutes.",
    "unreachable": "Impossible de joindre OVH depuis ce serveur ({inner_kind}) : vérifiez sa connexion à Internet et "
    "l'endpoint de ovh.conf (pour le simulateur : qu'il tourne), puis relancez.",
    "key": "OVH ne connaît pas l'application_key de ovh.conf : recopiez celle de l'application "
    "(voir « Créer les clés OVH » dans le README), puis relancez.",
    "signature": "OVH refuse la signature des demandes : l'application_secret de ovh.conf est faux ; recopiez celui "
    "de l'application, puis relancez.",
    "credential": "La clé d'accès (consumer_key de ovh.conf) n'est plus valable (expirée, révoquée ou jamais "
    "validée) : {new_key}",
    "not_granted": "La clé d'accès n'a pas le droit de faire cette demande ({error}) : {new_key}",
    "not_found": "OVH ne connaît pas la ligne de ce groupe ({error}) : vérifiez billing_account et number dans "
    "lines.ini.",
    # Not OVH's answer: a file that cannot be written, or a bug.
    "other": "{kind}: {error} ; vérifiez les droits des fichiers : {check}",
}
OVH_OWN_ERROR = "OVH a rencontré une erreur de son côté ({kind}: {error}) : réessayez dans quelques minutes."


def explain_for_it(error):
    """One French sentence for IT on the command line: why OVH did not do what was asked, and what to do next."""
    if isinstance(error, ConfigError):
        return f"{error} (voir « Créer les clés OVH » dans le README)."
    if isinstance(error, OvhFailure) and error.reason in LINE_MISTAKES:
        return error.detail
    if isinstance(error, OvhFailure):
        explanation, _ = describe_failure(error, "l'informatique")
        return f"{explanation} ({error.detail.strip().splitlines()[-1]})"
    if isinstance(error, OSError) and error.filename:  # A file of the page that cannot be read or written.
        check = script_command("index.py", "--check")
        return f"{error.filename} : {os_error_text(error)} ; vérifiez ce chemin et les droits des fichiers : {check}"
    return IT_EXPLANATIONS.get(ovh_cause(error), OVH_OWN_ERROR).format(
        error=error,
        kind=type(error).__name__,
        inner=wrapped(error),
        inner_kind=type(wrapped(error)).__name__,
        new_key=f"créez-en une : {script_command('create_consumer_key.py')}",
        check=script_command("index.py", "--check"),
    )
