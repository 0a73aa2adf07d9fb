"""HTML: the templates and the escaping of every page, the list of groups, the access and message pages.

Escaping is the default: a text becomes HTML by escape(), and the templates escape each value
that is not marked HTML already. A function that builds a fragment itself returns it as HTML.
A group's page is group_page.py's, its statistics stats_page.py's.
"""

import struct
from string import Template

from .phones import format_phone

ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})  # html.escape's.


class HTML(str):
    """Text that is HTML already: escape() and the templates put it in a page as it is."""

    __slots__ = ()


def escape(value):
    """`value` for a page: an HTML as it is, anything else as text, escaped."""
    return value if isinstance(value, HTML) else HTML(str(value).translate(ESCAPES))


def join(parts, separator="\n"):
    """Parts one after the other, each escaped unless it is HTML already."""
    return HTML(separator.join(escape(part) for part in parts))


class HTMLTemplate:
    """HTML with $names: render() fills them, escaping each value that is not HTML already."""

    def __init__(self, text):
        self.template = Template(text)

    def render(self, **values):
        """The HTML filled with `values`; one missing is a KeyError."""
        return HTML(self.template.substitute({name: escape(value) for name, value in values.items()}))


STYLE = """
body{margin:0;font:1rem/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff}
main{max-width:36rem;margin:0 auto;padding:.5rem 1rem 1rem}
h1{font-size:1.125rem;line-height:1.25;margin:.25rem 0}
h2{font-size:1.0625rem;margin:.625rem 0 .25rem}
p{margin:.5rem 0}
a{color:#0b4fb3;display:inline-block;padding:.6875rem 0}
a.inline{display:inline;padding:0}
.muted{color:#4a4a4a}
h2 .when{font-size:1rem;font-weight:400;color:#4a4a4a;white-space:nowrap}
.box{border:2px solid;border-radius:.5rem;padding:.25rem .75rem;margin:.5rem 0}
.box p{margin:.25rem 0}
.ok{background:#e9f6ec;border-color:#1e6b34}
.error{background:#fdecea;border-color:#a4161a}
.warning{background:#fff6db;border-color:#7a5a00}
.on{font-weight:600;color:#1e6b34;line-height:1.3}
.off{font-weight:600;line-height:1.3}
.tel{white-space:nowrap}
label{display:block;font-weight:600;margin:.375rem 0 .125rem}
input{box-sizing:border-box;width:100%;min-height:2.75rem;font-size:1.125rem;padding:.5rem;border:2px solid #4a4a4a;
border-radius:.4rem}
.pair{display:flex;gap:.75rem;align-items:flex-start}
.pair>div{flex:1;min-width:0}
.pair>div:first-child{flex:0 0 9rem}
.pair label{line-height:1.3}
.optional{font-weight:400}
input[aria-invalid=true]{border-color:#a4161a}
.field-error{color:#a4161a;font-weight:600}
button{width:100%;min-height:2.75rem;margin-top:.75rem;padding:.6rem 1rem;border:0;border-radius:.4rem;
font:inherit;font-weight:600;color:#fff;background:#a4161a;cursor:pointer}
button.finish{background:#2b2b2b}
form.inline{display:inline}
button.remove{width:auto;min-height:2.75rem;margin:0 0 0 .5rem;padding:.25rem .9rem;color:#1b1b1b;background:#e8e8e8;
border:2px solid #4a4a4a}
ul.team{list-style:none;padding-left:0;margin:.25rem 0;line-height:1.3}
ul.team li{margin:.25rem 0;display:flex;align-items:center;justify-content:space-between;gap:.5rem}
ul{padding-left:1.25rem}
li{margin:.25rem 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:1rem;white-space:nowrap}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{padding:.3rem .5rem;border-bottom:1px solid #ccc;text-align:right;vertical-align:top}
.left{text-align:left}
tbody th{font-weight:400}
details.handover{margin-top:1rem}
summary{color:#0b4fb3;padding:.6875rem 0;cursor:pointer}
summary h2{display:inline;font-size:inherit;margin:0}
footer{margin-top:2rem;font-size:1rem}
ul.messages{list-style:none;padding-left:0}
ul.messages li{border-top:1px solid #ccc;padding:.5rem 0}
audio{width:100%}
""".strip()

PAGE = HTMLTemplate(
    """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$style</style>
</head>
<body>
<main>
$body
</main>
</body>
</html>
"""
)

INDEX_BODY = HTMLTemplate(
    """<h1>Permanences téléphoniques de la Cimade</h1>
<p>Choisissez votre groupe :</p>
<ul>
$groups
</ul>"""
)

ACCESS_BODY = HTMLTemplate(
    """<h1>Permanence téléphonique $name</h1>
$messages
<p>Cette page est réservée aux bénévoles du groupe. Entrez le code d'accès que la coordination vous a donné.</p>
<form method="post" action="$access_url">
$csrf
$field
<button type="submit">Entrer</button>
</form>
<footer>
$contact
<p><a href="$home_url">Tous les groupes</a></p>
</footer>"""
)

MESSAGE_BODY = HTMLTemplate(
    """<h1>$title</h1>
$box
<p><a href="$home_url">Retour à la liste des groupes</a></p>"""
)

MESSAGE_BOX = HTMLTemplate('<div class="box $kind"><p>$text</p></div>')


def render_page(title, body):
    """The whole HTML document around a body."""
    return PAGE.render(title=title, style=HTML(STYLE), body=body)


def render_index(settings, base):
    """The list of groups."""
    groups = join(
        HTML(
            f'<li><a href="{escape(base)}/{escape(g.slug)}">{escape(g.name)}</a> '
            f'<span class="muted tel">({escape(format_phone(g.number))})</span></li>'
        )
        for g in sorted(settings.groups.values(), key=lambda g: g.name.lower())
    )
    return render_page("Permanences téléphoniques de la Cimade", INDEX_BODY.render(groups=groups))


def render_message(title, message, base, kind="error"):
    """A page that only says something, such as an error or a page not found."""
    return render_page(title, MESSAGE_BODY.render(title=title, box=message_box(kind, message), home_url=f"{base}/"))


def phone_span(shown):
    """A number as shown (whole or masked), kept on one line."""
    return HTML(f'<span class="tel">{escape(shown)}</span>')


def csrf_field(token):
    """The hidden field that proves a form came from this site."""
    return HTML(f'<input type="hidden" name="csrf" value="{escape(token)}">')


def contact_line(group):
    """The group's contact, if lines.ini gives one."""
    return HTML(f"<p>Contact du groupe : {escape(group.contact)}</p>" if group.contact else "")


def render_access(settings, group, base, token, messages, error=""):
    """The page that asks for a group's access code."""
    errors = {"code": error} if error else {}
    body = ACCESS_BODY.render(
        name=group.name,
        messages=join(messages),
        access_url=f"{base}/{group.slug}/access",
        csrf=csrf_field(token),
        field=input_field("code", "Code d'accès", "password", "current-password", {}, errors),
        contact=contact_line(group),
        home_url=f"{base}/",
    )
    return render_page(f"Permanence {group.name}", body)


def input_field(name, label, kind, autocomplete, typed, errors):
    """A labelled text input, keeping what was typed, with its error if any."""
    error = errors.get(name)
    attributes = f'type="{kind}" autocomplete="{autocomplete}"' + (' inputmode="tel"' if kind == "tel" else "")
    if error:
        attributes += f' aria-invalid="true" aria-describedby="{name}-error"'
    html_text = (
        f'<label for="{name}">{escape(label)}</label>\n'
        f'<input id="{name}" name="{name}" {attributes} value="{escape(typed.get(name, ""))}">'
    )
    if error:
        html_text += f'\n<p id="{name}-error" class="field-error">{escape(error)}</p>'
    return HTML(html_text)


def fold(summary, text, kind=""):
    """An explanation folded under its short summary (<details>: opens without JavaScript); both escaped unless HTML.

    A text is one paragraph; an HTML text is put as it is (a list). `kind`: the class of the <details>, if any.
    """
    content = text if isinstance(text, HTML) else HTML(f"<p>{escape(text)}</p>")
    opening = f'<details class="{kind}">' if kind else "<details>"
    return HTML(f"{opening}<summary>{escape(summary)}</summary>\n{content}\n</details>")


def message_box(kind, text):
    """A coloured box with one message: `text` is escaped, unless it is HTML already."""
    return MESSAGE_BOX.render(kind=kind, text=text)


def favicon():
    """A 16×16 icon (a red disc), drawn as a Windows icon file."""
    size = 16
    pixels = b"".join(
        (b"\x1a\x16\xa4\xff" if (x - 7.5) ** 2 + (y - 7.5) ** 2 <= 56 else b"\x00\x00\x00\x00")
        for y in range(size)
        for x in range(size)
    )
    bitmap = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    bitmap += pixels + b"\x00" * (4 * size)  # The colour pixels, then the (unused) transparency mask.
    header = struct.pack("<HHHBBBBHHII", 0, 1, 1, size, size, 0, 0, 1, 32, len(bitmap), 22)
    return header + bitmap
