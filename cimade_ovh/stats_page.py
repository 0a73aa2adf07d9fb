"""The statistics page of a queue group: a summary, a chart of answered and lost calls per day, a table."""

from .clock import format_duration, format_short_day
from .pages import HTML, HTMLTemplate, escape, join, message_box, phone_span, render_page
from .phones import mask_phone

STATS_BODY = HTMLTemplate(
    """<h1>Statistiques<br>$name</h1>
<p class="muted">Les $days derniers jours, du $first au $last.</p>
$content
<footer>
<p><a href="$group_url">Retour à la permanence</a></p>
<p><a href="$home_url">Tous les groupes</a></p>
</footer>"""
)

CHART_WIDTH, CHART_HEIGHT = 330, 200  # The chart's own units: about CSS pixels on a 360 px wide phone.
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 30, 16, 30, 22  # Room for the scale, the legend, the days.
ANSWERED_COLOUR, LOST_COLOUR = "#0b4fb3", "#c25e00"  # Blue and orange: told apart by colour-blind people too.
UNKNOWN_COLOUR, LINE_COLOUR, TEXT_COLOUR = "#e4e4e4", "#cccccc", "#4a4a4a"


def render_stats(group, base, figures):
    """A queue group's statistics: a summary, a bar chart of answered and lost calls per day, the same in a table."""
    known = [f for f in figures if f.records]
    if known:
        missing = len(figures) - len(known)
        summary = HTML(
            f"<p>En tout : {plural(sum(f.calls for f in known), 'appel')}, "
            f"dont {plural(sum(f.answered for f in known), 'répondu')} "
            f"et {plural(sum(f.lost for f in known), 'perdu')}."
            + (f" {plural(missing, 'jour')} sans relevé." if missing else "")
            + "</p>"
        )
        note = HTML(
            '<p class="muted">Les chiffres viennent des compteurs de la file d\'appels chez OVH, relevés '
            "régulièrement. « Qui a répondu » ne connaît que les appels en cours lors d'un relevé.</p>"
        )
        content = join([summary, render_chart(figures), render_stats_table(figures), note])
    else:
        text = "Pas encore de statistiques pour ce groupe : aucun relevé ces derniers jours."
        content = message_box("warning", text)
    body = STATS_BODY.render(
        name=group.name,
        days=len(figures),
        first=format_short_day(figures[0].day),
        last=format_short_day(figures[-1].day),
        content=content,
        group_url=f"{base}/{group.slug}",
        home_url=f"{base}/",
    )
    return render_page(f"Statistiques {group.name}", body)


def plural(count, word):
    """« 0 appel », « 1 appel », « 3 appels »."""
    return f"{count} {word}{'s' if count > 1 else ''}"


def scale_step(highest):
    """The step of the chart's scale: 1, 2 or 5 times a power of ten, for at most 4 steps up to `highest`."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if step * 4 >= highest:
                return step
        power *= 10


def render_chart(figures):
    """Answered and lost calls per day as stacked bars, in inline SVG (no script, no style attribute)."""
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    bottom = CHART_TOP + plot_height
    highest = max(f.answered + f.lost for f in figures)
    step = scale_step(highest)
    top = step * max(1, -(-highest // step))  # The scale's top: `highest` rounded up to a step.
    slot = plot_width / len(figures)
    first, last = format_short_day(figures[0].day), format_short_day(figures[-1].day)
    parts = [
        f'<svg role="img" aria-labelledby="chart-title" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="100%" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{TEXT_COLOUR}">',
        f'<title id="chart-title">Appels répondus et perdus par jour, du {escape(first)} au {escape(last)} '
        "(les chiffres sont dans le tableau qui suit)</title>",
    ]
    for x, colour, label in (
        (CHART_LEFT, ANSWERED_COLOUR, "répondus"),
        (CHART_LEFT + 85, LOST_COLOUR, "perdus"),
        (CHART_LEFT + 155, UNKNOWN_COLOUR, "pas de relevé"),
    ):
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="15">{label}</text>')
    for value in range(0, top + 1, step):
        y = bottom - value * plot_height / top
        parts.append(
            f'<line x1="{CHART_LEFT}" x2="{CHART_WIDTH - CHART_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{LINE_COLOUR}" stroke-width="1"/>'
        )
        parts.append(f'<text x="{CHART_LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    for i, figure in enumerate(figures):
        x = CHART_LEFT + i * slot + slot * 0.15
        width = slot * 0.7
        day = escape(format_short_day(figure.day))
        if not figure.records:
            parts.append(
                f'<rect x="{x:.1f}" y="{CHART_TOP}" width="{width:.1f}" height="{plot_height}" '
                f'fill="{UNKNOWN_COLOUR}"><title>{day} : pas de relevé</title></rect>'
            )
        y = bottom
        for count, colour, word in ((figure.answered, ANSWERED_COLOUR, "répondu"), (figure.lost, LOST_COLOUR, "perdu")):
            if count:
                height = count * plot_height / top
                y -= height
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}">'
                    f"<title>{day} : {plural(count, word)}</title></rect>"
                )
        if (len(figures) - 1 - i) % 7 == 0:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{CHART_HEIGHT - 6}" text-anchor="middle">{figure.day:%d/%m}</text>'
            )
    parts.append("</svg>")
    return HTML("\n".join(parts))


def render_stats_table(figures):
    """The chart's figures, and more, as a table that screen readers can read."""
    rows = []
    for figure in figures:
        day = f'<th scope="row" class="left">{escape(format_short_day(figure.day))}</th>'
        if not figure.records:
            rows.append(f'<tr>{day}<td colspan="6" class="left muted">pas de relevé</td></tr>')
            continue
        agents = "<br>".join(phone_span(mask_phone(a)) for a in figure.agents)
        rows.append(
            f"<tr>{day}<td>{figure.answered}</td><td>{figure.lost}</td><td>{figure.calls}</td>"
            f"<td>{format_duration(figure.waiting_seconds)}</td><td>{format_duration(figure.talk_seconds)}</td>"
            f'<td class="left">{agents}</td></tr>'
        )
    return HTML(
        '<div class="scroll" role="region" aria-labelledby="table-caption" tabindex="0">\n<table>\n'
        '<caption id="table-caption">Appels par jour</caption>\n'
        '<thead><tr><th scope="col" class="left">Jour</th><th scope="col">Répondus</th><th scope="col">Perdus</th>'
        '<th scope="col">Appels</th><th scope="col">Attente</th><th scope="col">Conversation</th>'
        '<th scope="col" class="left">Qui a répondu</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</div>"
    )
