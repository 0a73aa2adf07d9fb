"""The words of the activity log, each declared once with what the page and the mail to IT say of it.

A volunteer's button ends in one of the words that have a flash text: the line's Outcome
gives it ("on-duty" becomes "same", "name", "ends" or "name-ends": what changed), or, for a
voicemail message's « Traité » and « À traiter », what its move did. A failed
action is logged under the word it attempted. The other words are written by the page or
by stats.py, never flashed: "auto-finish" is shown with the last actions, "access" (a code
typed) and "housekeeping" (stats.py tidying a queue) only stay in the log.
"""

from collections import namedtuple


class Action(namedtuple("Action", "word flash subject handover later", defaults=("", "", "", ""))):
    """One word of the activity log and its texts; "" where the word is never shown there.

    flash: the box on the page after the button; $number stands for the volunteer's number.
    subject: the mail to IT's subject, between the group's name and the number.
    handover: « Dernières actions » on the group's page.
    later: the flash while the line opens later today ($opens: at 2 h): a queue's period before 02:00.
    """

    __slots__ = ()


ACTIONS = {
    action.word: action
    for action in (
        Action(
            "start",
            "C'est fait : les appels arrivent maintenant sur le $number.",
            "permanence commencée sur le",
            "début",
            "C'est fait : les appels arriveront à partir de $opens sur le $number.",
        ),
        Action(
            "change",
            "C'est fait : le numéro a changé, les appels arrivent maintenant sur le $number.",
            "permanence passée sur le",
            "changement de numéro",
            "C'est fait : le numéro a changé, les appels arriveront à partir de $opens sur le $number.",
        ),
        Action(
            "finish",
            "La permanence est terminée : les appels n'arrivent plus sur le numéro du bénévole.",
            "permanence terminée",
            "fin",
        ),
        Action(
            "nothing",
            "Il n'y avait pas de permanence en cours ; rien n'a changé.",
            "« Terminer » sans permanence en cours",
        ),
        Action(
            "same",
            "Le $number reçoit déjà les appels ; rien n'a changé.",
            "numéro déjà en permanence :",
        ),
        Action(
            "add",
            "C'est fait : le $number reçoit aussi les appels.",
            "numéro ajouté à la permanence :",
            "numéro ajouté",
            "C'est fait : le $number recevra aussi les appels, à partir de $opens.",
        ),
        Action(
            "resume",
            "C'est fait : la permanence reprend, les appels arrivent de nouveau sur les numéros ci-dessous.",
            "permanence reprise par le",
            "permanence reprise",
            "C'est fait : la permanence reprend, les appels arriveront à partir de $opens sur les numéros ci-dessous.",
        ),
        Action(
            "resume-name",
            "C'est fait : la permanence reprend, les appels arrivent de nouveau sur les numéros ci-dessous ; "
            "le prénom du $number a changé.",
            "permanence reprise (prénom changé) par le",
            "permanence reprise, prénom changé",
            "C'est fait : la permanence reprend, les appels arriveront à partir de $opens sur les numéros "
            "ci-dessous ; le prénom du $number a changé.",
        ),
        Action(
            "remove-finish",
            "La permanence est terminée : le $number est retiré, et la fin prévue de ceux qui restaient est déjà "
            "passée. Les appels n'arrivent plus sur aucun numéro.",
            "numéro retiré, permanence terminée (fin prévue des autres passée) :",
            "numéro retiré, permanence terminée",
        ),
        Action(
            "remove",
            "C'est fait : le $number ne reçoit plus les appels.",
            "numéro retiré de la permanence :",
            "numéro retiré",
        ),
        Action(
            "gone",
            "Ce numéro ne recevait déjà plus les appels ; rien n'a changé.",
            "« Retirer » un numéro qui ne répondait plus",
        ),
        Action(
            "ends",
            "C'est fait : la fin prévue du $number a changé (voir ci-dessous).",
            "fin prévue changée pour le",
            "fin prévue changée",
        ),
        Action(
            "name",
            "C'est fait : le prénom du $number a changé (voir ci-dessous).",
            "prénom changé pour le",
            "prénom changé",
        ),
        Action(
            "name-ends",
            "C'est fait : le prénom et la fin prévue du $number ont changé (voir ci-dessous).",
            "prénom et fin prévue changés pour le",
            "prénom et fin prévue changés",
        ),
        Action(
            "handled",
            "C'est noté : le message est traité.",
            "message du répondeur traité",
            "message traité",
        ),
        Action(
            "unhandled",
            "C'est noté : le message est de nouveau à traiter.",
            "message du répondeur remis à traiter",
            "message remis à traiter",
        ),
        Action(
            "already-handled",
            "Ce message était déjà traité (voir ci-dessous) ; rien n'a changé.",
            "message du répondeur déjà traité",
        ),
        Action(
            "already-unhandled",
            "Ce message était déjà à traiter ; rien n'a changé.",
            "message du répondeur déjà à traiter",
        ),
        Action(
            "message-gone",
            "Ce message n'est plus sur le répondeur du groupe (effacé entre-temps) ; rien n'a changé.",
            "message du répondeur introuvable",
        ),
        Action("auto-finish", handover="fin automatique"),  # stats.py, at the planned end.
        Action("access"),
        Action("housekeeping"),
    )
}
MESSAGE_ACTIONS = ("handled", "unhandled")  # A voicemail message's « Traité » and « À traiter ».
FLASHED = tuple(word for word, action in ACTIONS.items() if action.flash)  # What a volunteer's button ends in.
HANDED_OVER = tuple(word for word, action in ACTIONS.items() if action.handover)  # Listed in « Dernières actions ».


class Note(namedtuple("Note", "code flash logged")):
    """What a done action adds to its report: its code in the flash cookie, its words there and in the log."""

    __slots__ = ()


# The planned ends could not be stored: nothing will end the permanence on time.
ENDS_NOT_KEPT = Note(
    "ends-not-kept",
    "Attention : la page n'a pas pu enregistrer la fin prévue (un problème de son dossier de données) : elle ne "
    "terminera pas la permanence d'elle-même à l'heure prévue. Le moment venu, terminez la permanence vous-même "
    "(ou retirez votre numéro). L'informatique est prévenue.",
    "fin prévue non enregistrée",
)
# The volunteer's first name could not be kept: the page writes it only in its own agents' descriptions, never in
# those of the agents IT created at OVH.
NAME_NOT_KEPT = Note(
    "name-not-kept",
    "Votre prénom n'a pas été enregistré : ce numéro est un agent que l'informatique a créé chez OVH, dont la page "
    "ne change pas la description.",
    "prénom non enregistré (agent de l'informatique)",
)
NOTES = {note.code: note for note in (ENDS_NOT_KEPT, NAME_NOT_KEPT)}
