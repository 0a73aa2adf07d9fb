"""A group's page: what it shows (GroupView), the line's state, the last actions, the forms, the voicemail
messages behind the group's code (VoicemailView), and the box that tells how an action went (its flash cookie
read back)."""

import re
from dataclasses import dataclass, field
from datetime import datetime
from string import Template

from .actions import ACTIONS, ENDS_NOT_KEPT, FLASHED, NAME_NOT_KEPT, NOTES
from .clock import default_end, format_duration, format_end, format_field_end, format_short_day_time
from .figures import STATS_DAYS
from .ovhapi import (
    OVH_FAILURES,
    RETRY_LATER,
    OvhFailure,
    describe_failure,
    is_explanation,
)
from .pages import (
    HTML,
    HTMLTemplate,
    contact_line,
    csrf_field,
    escape,
    fold,
    input_field,
    join,
    message_box,
    phone_span,
    render_page,
)
from .phones import format_phone, mask_phone

GROUP_BODY = HTMLTemplate(
    """<h1>Permanence téléphonique $name</h1>
$messages
<h2>En ce moment <span class="when">$time</span></h2>
$state
<h2>Répondre aux appels</h2>
<form method="post" action="$start_url">
$csrf
$fields
$start_note
<button type="submit">$start_label</button>
$start_help
</form>
$finish
$voicemail
$handover
<footer>
<p>Numéro du groupe : <span class="tel">$public_number</span></p>
$contact
$stats_link
<p><a href="$home_url">Tous les groupes</a></p>
</footer>"""
)


FINISH_FORM = HTMLTemplate(
    """<h2>Terminer</h2>
<form method="post" action="$finish_url">
$csrf
$finish_warning
<button type="submit" class="finish">$finish_label</button>
</form>"""
)


FAILED = HTMLTemplate("<strong>La demande n'a pas abouti, ou en partie seulement.</strong> $explanation$shown $advice")
# A failure that passes (« Réessayez… ; si cela dure, prévenez… »): what to do now in sight, the rest folded.
FAILED_FOR_NOW = HTMLTemplate(
    '<div class="box error"><p><strong>La demande n\'a pas abouti, ou en partie seulement.</strong> $now.</p>\n'
    "$why</div>"
)
IF_IT_LASTS = " ; si cela dure, "
# After a « start » that failed and left the permanence interrupted, with its number in the field again.
RESUME = "Appuyez de nouveau sur « $button » ; si cela dure, prévenez $contact."


@dataclass
class GroupView:
    """What a group's page shows: the line as read at `moment` (or the failure to read it), messages and forms."""

    settings: object  # lines.ini's settings: whom to tell of a failure.
    group: object  # The group of lines.ini.
    base: str  # The site's address before the group's slug.
    moment: datetime
    state: object  # The LineState read; None when reading failed.
    failure: object  # The OvhFailure when reading failed, else None.
    messages: list  # HTML boxes above the state.
    token: str  # The forms' token.
    typed: dict = field(default_factory=dict)  # What the volunteer typed, shown again.
    errors: dict = field(default_factory=dict)  # The form's mistakes by field, in French.
    actions: list = ()  # The group's last actions (traces.recent_actions).
    voicemail: object = None  # The VoicemailView; None when the line could not be read.
    flash: tuple = None  # After an action: how it went (read_flash), shown first; None otherwise.

    @property
    def resume_button(self):
        """The button that resumes the permanence a failed change left closed (interrupted); "" when it is not."""
        interrupted = self.state is not None and self.state.interrupted
        return start_button(self.group, True) if interrupted else ""

    @property
    def told_how_to_resume(self):
        """The box above says how to resume an interrupted permanence: the state need not explain it again.

        Only after a « start » that failed for a while, its form typed again (retyped): after another button, the
        state's own explanation says what can be done (resume, remove, finish).
        """
        if not self.resume_button or not self.flash or self.flash[0] in FLASHED or not self.typed.get("number"):
            return False
        return OVH_FAILURES[self.flash[0].removeprefix("error-")][1] == RETRY_LATER


@dataclass
class VoicemailView:
    """What a group's page shows of its voicemail: messages behind an access code, or how IT sets one."""

    coded: bool  # The group has an access code: its messages are shown.
    messages: list = field(default_factory=list)  # voicemail.Message, newest first.
    failures: list = field(default_factory=list)  # (box, OvhFailure) of the boxes OVH did not answer for.
    boxes: list = field(default_factory=list)  # The boxes read.
    set_code: str = ""  # Without a code: the command that gives one.
    problems: list = field(default_factory=list)  # OVH's settings that lose callers (voicemail.page_problems).

    @property
    def waiting(self):
        """The messages to handle."""
        return [m for m in self.messages if not m.handled]


def render_state(view):
    """The "En ce moment" part of a group page: permanence, where a call would ring, calls."""
    group, state = view.group, view.state
    if view.failure:
        explanation, advice = describe_failure(view.failure, view.settings.contact)
        return HTML(
            '<div class="box error"><p><strong>Impossible de lire l\'état de la ligne chez OVH.</strong></p>'
            f"<p>{escape(explanation)} {escape(advice)}</p></div>"
        )
    if (state.running or state.interrupted) and state.volunteers and group.max_volunteers > 1:
        lines = [render_team(view)]
    elif state.interrupted and state.volunteers:
        heading = HTML(f'<p class="off">Permanence interrompue sur le {phone_list(state.numbers)}</p>')
        lines = [heading] if view.told_how_to_resume else [heading, fold(HOW_TO_RESUME, INTERRUPTED_ONE)]
    elif state.running and state.volunteers:
        lines = [HTML(f'<p class="on">{permanence_heading(state)} sur le {phone_list(state.numbers)}</p>')]
        if state.volunteers[0].until is not None:
            lines.append(HTML(f"<p>Fin prévue à {escape(format_end(state.volunteers[0].until))}.</p>"))
    elif state.open_without_volunteer:
        lines = [HTML('<p class="off">La permanence est ouverte, mais aucun numéro ne reçoit les appels.</p>')]
    else:
        lines = [HTML('<p class="off">Pas de permanence en cours.</p>')]
    if state.conditions_off:
        lines.append(message_box("warning", CONDITIONS_OFF_NOTICE))
    if group.kind == "redirect" and not state.running:
        sip_line = escape(format_phone(state.sip_line))
        where = f'Les appels arrivent sur la ligne SIP du groupe <span class="tel">({sip_line}).</span>'
    else:
        where = f"Si quelqu'un appelle maintenant, {what_a_call_does(state)}"
    # Where a call goes, then how many messages wait (« l'appel va sur la messagerie… 2 messages à traiter »).
    waiting = f" {waiting_line(view.voicemail)}" if view.voicemail and view.voicemail.coded else ""
    lines.append(HTML(f"<p>{where}{waiting}</p>"))
    if group.kind == "queue":
        lines.append(render_calls(state.calls))
    return join(lines)


CONDITIONS_OFF_NOTICE = (
    "Les plages horaires de cette ligne sont désactivées chez OVH : la page ne peut ni ouvrir ni fermer "
    "la ligne. Les numéros des bénévoles sonnent à toute heure tant qu'ils reçoivent les appels de la file "
    "(jusqu'à « Terminer »). L'informatique a été prévenue par courriel."
)
CLOSED_LINE = {
    "voicemail": HTML("l'appel va sur la messagerie de la ligne."),
    "": HTML("l'appelant entend le message de fermeture de la ligne ; ça ne sonne chez personne."),
}


def what_a_call_does(state):
    """The end of « Si quelqu'un appelle maintenant, … », as OVH decides: who rings and how, or where the call goes."""
    numbers = state.rings_now
    if state.elsewhere is not None:
        return CLOSED_LINE.get(state.elsewhere) or HTML(f"l'appel est renvoyé vers le {phone_list([state.elsewhere])}")
    if not numbers:
        return HTML("ça ne sonne chez personne.")
    if len(numbers) == 1:
        return HTML(f"ça sonne sur le {phone_list(numbers)}")
    if state.strategy == "ringAll":
        return HTML(f"ça sonne ensemble sur le {phone_list(numbers)}")
    if state.strategy == "sequentiallyByAgentOrder":
        turns = [f"sur le {phone_span(mask_phone(n))}" for n in numbers]
        return HTML(f"ça sonne d'abord {turns[0]}, puis " + ", puis ".join(turns[1:]) + ".")
    return HTML(f"ça sonne tour à tour, dans l'ordre que choisit OVH, sur le {phone_list(numbers)}")


def render_team(view):
    """The volunteers answering together: name, masked number, their call, and a button to remove each."""
    group, state, csrf = view.group, view.state, csrf_field(view.token)
    count = len(state.volunteers)
    items = []
    for volunteer in state.volunteers:
        who = phone_span(mask_phone(volunteer.number))
        if volunteer.name:  # Isolated: a right-to-left name would take the number's direction.
            who = f"<bdi>{escape(volunteer.name)}</bdi>, {who}"
        call = volunteer.call
        since = call and (call.answered or call.begin)
        doing = (f"en appel depuis {since:%H:%M}" if since else "en appel") if call else "libre"
        if volunteer.until is not None:
            doing += f", jusqu'à {format_end(volunteer.until)}"
        label = escape(f"Retirer le {mask_phone(volunteer.number)}")
        items.append(
            f"<li><span>{who} : {doing}</span>\n"
            f'<form method="post" action="{escape(view.base)}/{escape(group.slug)}/remove" class="inline">{csrf}'
            f'<input type="hidden" name="volunteer" value="{escape(volunteer.mark)}">'
            f'<button type="submit" class="remove" aria-label="{label}">Retirer</button></form></li>'
        )
    heading = f"{count} bénévole{'s' if count > 1 else ''} sur {group.max_volunteers} au plus"
    team = '<ul class="team">\n' + "\n".join(items) + "\n</ul>"
    if state.interrupted:
        resume = "" if view.told_how_to_resume else "\n" + fold(HOW_TO_RESUME, INTERRUPTED)
        return HTML(f'<p class="off">Permanence interrompue : {heading}.</p>\n{team}{resume}')
    return HTML(f'<p class="on">{permanence_heading(state)} : {heading}.</p>\n{team}')


def permanence_heading(state):
    """« Permanence en cours », or « prévue à partir de 2 h » while today's period waits for its opening."""
    if state.opens_at is not None:
        return f"Permanence prévue à partir de {escape(format_end(state.opens_at))}"
    return "Permanence en cours"


HOW_TO_RESUME = "Pourquoi, et comment reprendre"
INTERRUPTED_ONE = (
    "OVH a échoué pendant un changement : la ligne est fermée, les appels n'arrivent pas sur ce numéro "
    "pour l'instant. Pour reprendre la permanence, retapez le numéro ci-dessous et appuyez de nouveau "
    "sur « Répondre sur ce numéro » ; ou terminez la permanence."
)
INTERRUPTED = (
    "OVH a échoué pendant un changement : la ligne est fermée, les appels n'arrivent pas sur ces numéros "
    "pour l'instant. Pour reprendre la permanence, retapez votre numéro ci-dessous et appuyez de nouveau "
    "sur « Ajouter mon numéro » ; ou retirez un numéro, ou terminez la permanence."
)


def phone_list(numbers):
    """Masked numbers separated by commas and ending with a full stop, each kept on one line."""
    last = len(numbers) - 1
    return join((phone_span(mask_phone(n) + ("." if i == last else ",")) for i, n in enumerate(numbers)), " ")


def render_calls(calls):
    """The calls in progress and waiting in a queue."""
    if not calls:
        return HTML("<p>Aucun appel en cours ni en attente.</p>")
    items = []
    for call in calls:
        since = f"{call.begin:%H:%M}" if call.begin else "?"
        if call.waiting:
            items.append(HTML(f"<li>Appel en attente depuis {since}</li>"))
        else:
            answered = f"{call.answered:%H:%M}" if call.answered else since
            agent = phone_span(mask_phone(call.agent))
            items.append(HTML(f"<li>Appel en cours depuis {answered} avec le {agent}</li>"))
    return HTML(f"<p>Appels :</p>\n<ul>\n{join(items)}\n</ul>")


def waiting_line(voicemail):
    """How many messages wait on the group's voicemail, with a link to their list: a sentence of the status line."""
    count = len(voicemail.waiting)
    if not voicemail.boxes:
        return HTML("Aucun répondeur ne prend les appels sans réponse de ce groupe.")
    if voicemail.failures:  # A count would be false: the box OVH did not answer for may hold messages.
        return HTML('<a class="inline" href="#messagerie">Messages à traiter : lecture impossible chez OVH.</a>')
    if not count:
        return HTML("Aucun message à traiter sur la messagerie.")
    plural = "s" if count > 1 else ""
    return HTML(f'<a class="inline" href="#messagerie"><strong>{count} message{plural} à traiter</strong></a> '
                "sur la messagerie.")  # fmt: skip


VOICEMAIL_FAILURES = {  # What a box's failure means, when the line's own sentence would mislead.
    "not_found": "OVH ne connaît pas (ou plus) le répondeur {box} : ses messages ne peuvent pas s'afficher.",
    "not_granted": "La clé d'accès à OVH n'a pas le droit de lire le répondeur {box}.",
}
VOICEMAIL_ADVICE = {
    "not_found": "Prévenez $contact : le répondeur a été supprimé, ou lines.ini (clé voicemail) ou les renvois "
    "chez OVH nomment un répondeur qui n'existe pas.",
    "not_granted": "Prévenez $contact : il faut créer une nouvelle clé avec create_consumer_key.py.",
}


def render_voicemail(view):
    """The group's voicemail messages, below the forms: those to handle behind their count, those handled folded."""
    voicemail = view.voicemail
    if voicemail is None:
        return HTML("")
    if not voicemail.coded:
        return HTML(
            '<h2 id="messagerie">Messagerie</h2>\n<p class="muted">Les messages laissés sur le répondeur ne '
            "s'affichent que sur une page protégée par un code d'accès. Pour les voir ici, l'informatique doit "
            f"donner un code à ce groupe : <code>{escape(voicemail.set_code)}</code></p>"
        )
    parts = [HTML('<h2 id="messagerie">Messagerie</h2>')]
    for box, failure in voicemail.failures:
        explanation, advice = describe_failure(failure, view.settings.contact)
        if failure.reason in VOICEMAIL_FAILURES:
            explanation = VOICEMAIL_FAILURES[failure.reason].format(box=format_phone(box))
            advice = Template(VOICEMAIL_ADVICE[failure.reason]).safe_substitute(contact=view.settings.contact)
        parts.append(message_box("error", f"Impossible de lire un répondeur chez OVH. {explanation} {advice}"))
    if voicemail.problems:
        parts.append(message_box("warning", f"Des réglages d'OVH font perdre des appels : "
                                            f"{' ; '.join(voicemail.problems)}. Prévenez {view.settings.contact}."))
    waiting = voicemail.waiting
    handled = [m for m in voicemail.messages if m.handled]
    if waiting:
        plural = "s" if len(waiting) > 1 else ""
        items = join(render_message_item(view, m) for m in waiting)
        parts.append(HTML(f"<details><summary>{len(waiting)} message{plural} à traiter</summary>\n"
                          f'<ul class="messages">\n{items}\n</ul>\n</details>'))  # fmt: skip
    elif voicemail.boxes and not voicemail.failures:
        parts.append(HTML("<p>Aucun message à traiter.</p>"))
    if handled:
        plural = "s" if len(handled) > 1 else ""
        items = join(render_message_item(view, m) for m in handled)
        parts.append(HTML(f"<details><summary>{len(handled)} message{plural} traité{plural}</summary>\n"
                          f'<ul class="messages">\n{items}\n</ul>\n</details>'))  # fmt: skip
    return join(parts)


def render_message_item(view, message):
    """One message: when, how long, who (masked; whole only in « Rappeler »), the player and its button."""
    url = f"{view.base}/{view.group.slug}"
    when = escape(format_short_day_time(message.received)) if message.received else "?"
    caller = phone_span(mask_phone(message.caller)) if message.caller else HTML("numéro masqué")
    call_back = (
        HTML(f' <a href="tel:{escape(dial_number(message.caller))}">Rappeler</a>') if message.caller else HTML("")
    )
    audio = f"{url}/messages/{message.key}/audio"
    csrf = csrf_field(view.token)
    key = HTML(f'<input type="hidden" name="message" value="{escape(message.key)}">')
    if message.handled:
        who = f"rappelé par {message.by}" if message.by else "traité"
        who += f", {format_short_day_time(message.at)}" if message.at else ""
        form = HTML(
            f'<form method="post" action="{escape(url)}/unhandled">{csrf}{key}'
            f'<p class="muted">{escape(who)}</p><button type="submit" class="remove">À traiter</button></form>'
        )
    else:
        field_id = escape("by-" + message.key.replace(":", "-"))
        form = HTML(
            f'<form method="post" action="{escape(url)}/handled">{csrf}{key}'
            f'<label for="{field_id}">Rappelé par (prénom, facultatif)</label>'
            f'<input id="{field_id}" name="name" type="text" autocomplete="given-name">'
            '<button type="submit">Traité</button></form>'
        )
    return HTML(
        f"<li><p>{when} · {escape(format_duration(message.duration))} · {caller}{call_back}</p>\n"
        f'<audio controls preload="none" src="{escape(audio)}" aria-label="Écouter le message du {when}">'
        "Écouter</audio>\n"
        f"{form}</li>"
    )


def dial_number(number):
    """A number for a tel: link: international form, +33…, as phones dial it."""
    return "+" + number[2:] if number.startswith("00") else number


def render_handover(actions):
    """The group's last actions, so that a volunteer sees who had the line before them."""
    if not actions:
        return HTML("")
    items = []
    for moment, action, number, succeeded, detail in actions:
        what = ACTIONS[action].handover + ("" if succeeded else " (échec)")
        on = f", {phone_span(mask_phone(number))}" if number else ""
        more = f", {escape(detail)}" if detail else ""
        items.append(HTML(f"<li>{escape(format_short_day_time(moment))} : {escape(what)}{on}{more}</li>"))
    return fold(HTML("<h2>Dernières actions</h2>"), HTML(f"<ul>\n{join(items)}\n</ul>"), "handover")


def start_button(group, on_duty):
    """The start form's button: « Ajouter mon numéro » to join a team on duty (or resume it), else « Répondre… »."""
    return "Ajouter mon numéro" if group.max_volunteers > 1 and on_duty else "Répondre sur ce numéro"


def render_group(view):
    """A group's page: its state, the last actions, the form to start, change or join, the form to finish."""
    group, state, typed, errors = view.group, view.state, view.typed, view.errors
    url = f"{view.base}/{group.slug}"
    team = group.max_volunteers > 1
    on_duty = state.numbers if state and (state.running or state.interrupted) else []
    number = input_field("number", "Votre numéro de téléphone", "tel", "tel", typed, errors)
    proposed = {"ends": format_field_end(default_end(group, view.moment)), **typed}
    ends = input_field("ends", "Heure de fin", "time", "off", proposed, errors)
    if team:  # Side by side, two short fields: the button stays within the first screen.
        optional = HTML('Prénom <span class="optional">(facultatif)</span>')
        name = input_field("name", optional, "text", "given-name", typed, errors)
        fields = [number, HTML(f'<div class="pair">\n<div>{ends}</div>\n<div>{name}</div>\n</div>')]
    else:
        fields = [number, ends]
    # Folded: a warning on what the button does above it; help for those on duty or a full team below it.
    start_note = fold("Votre numéro remplacera l'actuel", ONE_NUMBER_ONLY[group.kind]) if on_duty and not team else ""
    start_help = []
    start_label = start_button(group, on_duty)
    if team and len(on_duty) >= group.max_volunteers:
        only_them = ""  # Interrupted: those on duty resume it with « Ajouter mon numéro », as the state above says.
        if state.running:
            start_label = "Changer mon heure de fin"  # Only those on duty can use it.
            only_them = (
                f"Le bouton « {start_label} » sert seulement aux bénévoles de permanence, pour changer leur heure "
                "de fin ou leur prénom. "
            )
        start_help.append(
            fold(
                "Permanence complète : que faire ?",
                f"La permanence est complète ({len(on_duty)} bénévoles). {only_them}"
                "Pour répondre à la place de quelqu'un, retirez d'abord son numéro.",
            )
        )
    if on_duty:
        kept_name = " (prénom laissé vide : celui que vous aviez donné reste)" if team else ""
        start_help.append(
            fold(
                "Prolonger ou avancer votre fin",
                "Prolonger / avancer la fin : déjà de permanence, retapez votre numéro "
                f"avec la nouvelle heure{kept_name}.",
            )
        )
    finish_warning = HTML(
        "<p>Les appels déjà en attente dans la file peuvent encore arriver sur votre numéro après la fin.</p>"
        if group.kind == "queue"
        else ""
    )
    body = GROUP_BODY.render(
        name=group.name,
        public_number=format_phone(group.number),
        time=format_short_day_time(view.moment),
        messages=join(([flash_message(view)] if view.flash else []) + list(view.messages)),
        state=render_state(view),
        handover=render_handover(view.actions),
        csrf=csrf_field(view.token),
        start_url=f"{url}/start",
        fields=join(fields),
        start_note=start_note,
        start_label=start_label,
        start_help=join(start_help),
        finish=FINISH_FORM.render(
            finish_url=f"{url}/finish",
            csrf=csrf_field(view.token),
            finish_warning=finish_warning,
            finish_label="Terminer la permanence pour tout le monde" if team else "Terminer la permanence",
        )
        if state is None or state.running or state.leftover
        else "",
        contact=contact_line(group),
        stats_link=HTML(
            f'<p><a href="{escape(url)}/stats">Statistiques des {STATS_DAYS} derniers jours</a></p>'
            if group.kind == "queue"
            else ""
        ),
        home_url=f"{view.base}/",
        voicemail=render_voicemail(view),
    )
    return render_page(f"Permanence {group.name}", body)


ONE_NUMBER_ONLY = {
    "redirect": "Cette ligne renvoie les appels vers un seul numéro à la fois : "
    "le vôtre remplacera celui de la permanence en cours.",
    "queue": "Ce groupe reçoit les appels sur un seul numéro à la fois : "
    "le vôtre remplacera celui de la permanence en cours.",
}


def read_flash(value):
    """Parse a flash cookie into (code, number, explanation), or None when it is not one of ours.

    The cookie is the browser's to change: its explanation is kept only if it is one of the page's own: after a
    done action, codes of actions.NOTES joined by "+"; after a failure, an explanation of ovhapi's.
    """
    code, _, rest = value.partition(":")
    number, _, explanation = rest.partition(":")
    known = code in FLASHED or code.removeprefix("error-") in OVH_FAILURES
    if code in FLASHED:
        ours = not explanation or all(note in NOTES for note in explanation.split("+"))
    else:
        ours = not explanation or is_explanation(explanation)
    if not known or not re.fullmatch(r"(00\d{6,15})?", number) or not ours:
        return None
    return code, number, explanation


def flash_message(view):
    """The box that tells the volunteer how their action went; after a failure, the state shown is what OVH has.

    A failure that may pass shows what to do now (try again, press the button again); why, and whom to tell if it
    lasts, fold. A failed « start » that left the permanence interrupted says which button resumes it: the state
    below shows the rest. While today's period waits for its opening (a queue before 2 h), a done action says when
    calls come.
    """
    code, number, explanation = view.flash
    if code in FLASHED:
        # Whole for the volunteer who just set their number; masked when someone removed another's.
        phone = phone_span(mask_phone(number) if code.startswith("remove") else format_phone(number))
        action, notes = ACTIONS[code], [NOTES[note] for note in explanation.split("+") if note]
        opens_at = view.state.opens_at if view.state is not None else None
        text = action.later if action.later and opens_at is not None else action.flash
        told = " ".join([text] + [NAME_NOT_KEPT.flash] * (NAME_NOT_KEPT in notes))
        opens = format_end(opens_at) if opens_at is not None else ""
        done = message_box("ok", HTMLTemplate(escape(told)).render(number=phone, opens=opens))
        return join([done, message_box("warning", ENDS_NOT_KEPT.flash)]) if ENDS_NOT_KEPT in notes else done
    failure = OvhFailure(code.removeprefix("error-"), "", explanation)
    explanation, advice = describe_failure(failure, view.settings.contact)
    shown = " L'état ci-dessous est celui qu'OVH a maintenant." if view.failure is None else ""
    if view.told_how_to_resume:  # The state below shows what OVH has: interrupted, and who waits.
        advice = Template(RESUME).safe_substitute(contact=view.settings.contact, button=view.resume_button)
    now, _, lasting = advice.partition(IF_IT_LASTS)
    if not lasting:  # Nothing to try again: the whole advice is what to do.
        return message_box("error", FAILED.render(explanation=explanation, shown=shown, advice=advice))
    why = f"{explanation}{shown} Si cela dure, {lasting}"
    return FAILED_FOR_NOW.render(now=now, why=fold("Pourquoi, et si cela dure", why))
