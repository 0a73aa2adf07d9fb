"""The HTML marker of cimade_ovh.pages: text is escaped unless it is marked HTML already."""

import base64
import hashlib

import pytest

from cimade_ovh.pages import HTML, STYLE, HTMLTemplate, escape, join, message_box
from cimade_ovh.web import STYLE_HASH


def test_plain_text_is_escaped():
    assert escape("<b>Zoé & \"Al\"'s</b>") == "&lt;b&gt;Zoé &amp; &quot;Al&quot;&#x27;s&lt;/b&gt;"
    assert escape(42) == "42" and isinstance(escape(42), HTML)


def test_html_passes_once():
    once = escape("<i>")
    assert escape(once) is once == "&lt;i&gt;"
    assert escape(HTML("<i>a</i>")) == "<i>a</i>"


def test_a_template_escapes_every_value_that_is_not_html():
    template = HTMLTemplate('<a href="$url">$name</a> $box')
    page = template.render(url='/x"y', name="<script>", box=HTML("<p>ok</p>"))
    assert page == '<a href="/x&quot;y">&lt;script&gt;</a> <p>ok</p>' and isinstance(page, HTML)


def test_a_template_leaves_no_value_unfilled():
    with pytest.raises(KeyError):
        HTMLTemplate("<p>$text</p>").render()


def test_text_made_of_html_by_str_methods_is_plain_text_again():
    joined = "".join([HTML("<br>")])
    assert not isinstance(joined, HTML) and escape(joined) == "&lt;br&gt;"
    assert join([HTML("<br>"), "<br>"], " ") == "<br> &lt;br&gt;"


def test_a_message_box_escapes_text_and_keeps_html():
    assert message_box("ok", "a < b") == '<div class="box ok"><p>a &lt; b</p></div>'
    assert message_box("error", HTML("<strong>!</strong>")) == '<div class="box error"><p><strong>!</strong></p></div>'


def test_the_content_security_policy_lets_the_style_in():
    assert STYLE_HASH == base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
