"""Every user-visible sentence lives in templates/ so the department can reword it without Python."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterable

import jinja2
from markupsafe import Markup

from .commands import cmd
from .dates import beijing, beijing_day
from .inbound import Reply
from .router import Answer, Picture
from .text import Trusted, mask_phone, md_escape

WEEKDAYS = "一二三四五六日"


def _md(value: object) -> Trusted:
    """``| md``: escape now (the finalize step then leaves it alone), so ``x | md | length`` and the
    like still see the escaped text the reader will."""
    return value if isinstance(value, (Trusted, Markup)) else md_escape(value)


def _cn_date(value: dt.date | dt.datetime) -> str:
    day = beijing_day(value)
    return f"{day.month}月{day.day}日"


def _cn_time(value: dt.datetime) -> str:
    """``11月29日 03:00``, Beijing time."""
    local = beijing(value)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def _iso_day(value: dt.date | dt.datetime) -> str:
    return beijing_day(value).isoformat()


def _weekday(value: dt.date | dt.datetime) -> str:
    return "周" + WEEKDAYS[beijing_day(value).weekday()]


def _percent(part: int, whole: int) -> str:
    return f"{(100 * part / whole):.0f}%" if whole else "—"


# Values that are never typed by a person and carry no Markdown: printed as they are.
_PLAIN_TYPES = (bool, int, float, dt.date, dt.datetime, dt.time, dt.timedelta)


def escape_output(value: object) -> object:
    """Jinja's ``finalize``: every ``{{ … }}`` a template prints passes here, so a value a person
    typed (a name, a letter, a reason, a unit) can never become a link, heading, list or mention in
    the bot's own voice — whether or not the template remembers ``| md``. What the bot wrote itself
    is :class:`~bot.text.Trusted` (rendered templates, ``| md``'s output, ``| trusted``) or a one-tap
    mark from ``cmd()`` (``Markup``, its values encoded inside) and passes."""
    if type(value) is str:  # most values: straight to the (memoised) escape
        return md_escape(value)
    if value is None or isinstance(value, _PASSED):  # Markup: cmd()'s marks
        return value
    return md_escape(value)


_PASSED = (Trusted, Markup, *_PLAIN_TYPES)


class Renderer:
    """Jinja2 over templates/: StrictUndefined so a typo fails a test, and every printed value escaped
    for Markdown unless the bot wrote it (:func:`escape_output`; ``| md`` is kept as a no-op marker).

    Blocks on lines of their own leave no trace (trim_blocks, lstrip_blocks). A line with text that
    *ends* in a block tag must close it with ``+%}`` (``…{% endif +%}``), or its newline is eaten and the
    next line joins it.
    """

    def __init__(self, templates_dir: str | Path) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
            finalize=escape_output,
        )
        self.env.filters.update(md=_md, trusted=Trusted, mask_phone=mask_phone, cn_date=_cn_date, cn_time=_cn_time,
                                iso_day=_iso_day, weekday=_weekday)
        self.env.globals.update(percent=_percent)
        # One-tap commands (bot/commands.py): a mark each channel shows as a link, a button or bold text.
        self.env.globals.update(cmd=cmd)

    def text(self, template: str, **values: Any) -> Trusted:
        """The rendered message; Trusted, so a message built from other rendered pieces keeps them."""
        compiled = self.env.get_template(f"{template}.md")
        return self._render(compiled, dict(compiled.globals), values)

    def _render(self, compiled: jinja2.Template, globals_: dict[str, Any], values: dict[str, Any]) -> Trusted:
        """The one place a template becomes text (replies, notices, jobs' messages). ``globals_`` is
        the template's globals as one dict, which a caller rendering many times builds once."""
        try:
            context = compiled.new_context({**globals_, **values}, shared=True)
            return Trusted("".join(compiled.root_render_func(context)).strip())
        except Exception:
            self.env.handle_exception()  # re-raises with the template's own line in the traceback

    def reply(self, answer: Answer | Picture) -> Reply:
        if isinstance(answer, Picture):
            return Reply(picture_body(answer.spec), "image", answer)
        return Reply(self.text(answer.template, **answer.values), answer.format, answer)

    def replies(self, answers: Iterable[Answer | Picture]) -> list[Reply]:
        """Many answers at once (a job writing to thousands of people): each template is loaded once
        and each distinct answer object rendered once — the same output as :meth:`reply`."""
        compiled: dict[str, tuple[jinja2.Template, dict[str, Any]]] = {}
        done: dict[int, Reply] = {}
        out = []
        for answer in answers:
            reply = done.get(id(answer))
            if reply is None:
                if isinstance(answer, Picture):
                    reply = Reply(picture_body(answer.spec), "image", answer)
                else:
                    if answer.template not in compiled:
                        template = self.env.get_template(f"{answer.template}.md")
                        compiled[answer.template] = template, dict(template.globals)
                    reply = Reply(self._render(*compiled[answer.template], answer.values), answer.format, answer)
                done[id(answer)] = reply
            out.append(reply)
        return out


def picture_body(spec: dict[str, Any]) -> str:
    """A picture as it travels (replies, outbox rows): its chart's data, drawn when sent. Sorted keys,
    so the same chart is the same body (the outbox batches identical bodies)."""
    return json.dumps(spec, ensure_ascii=False, sort_keys=True)
