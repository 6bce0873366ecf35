"""Commands declare themselves; help, permission checks and wrong-form answers come from the declaration.

Each ``handlers/`` module makes a :class:`Router` and decorates its handlers::

    router = Router()

    @router.command("记录", "log", roles={Role.MENTOR, Role.MENTEE},
                    summary="记录一次师徒联系", usage="记录 [对方姓名] [日期] 方式 内容",
                    examples=("记录 面谈 讨论招商项目推进方法",))
    async def log_contact(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer: ...

A handler names what it needs, from :data:`INJECTABLE`; the gateway passes exactly those, and a name
nothing provides fails when the command is declared (at import), not on someone's first message.
It returns an :class:`Answer` (a template and its values), or raises :class:`UsageError` (wrong form:
the answer repeats the command's usage and example) or :class:`Refusal` (a reasoned "no").
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Iterable, Protocol

from .text import Args, Trusted, fold

Handler = Callable[..., Awaitable["Answer | list[Answer]"]]

# What a handler may name, each one narrow thing (``bot.gateway.Gateway._call`` fills exactly these):
# msg (the InboundMessage), sender, args, session, clock, calendar (the working days of ``[calendar]``),
# config, command (the Command being run), notify (render an Answer for someone else and queue it, a
# :class:`bot.notify.Notifier`), renderer and outbox (for what notify does not cover), commands (what 帮助 lists, a :class:`Commands`), fetch (a message's file bytes, or None). No whole bags: a handler that names what
# it uses can be read, and tested, without the rest of the house.
INJECTABLE = frozenset({"msg", "sender", "args", "session", "clock", "calendar", "config", "command", "notify",
                        "renderer", "outbox", "commands", "fetch"})


@dataclass(frozen=True)
class Answer:
    """A reply to be rendered: ``template`` under templates/ (without ``.md``) and its values."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    # "card": a message whose commands (``cmd()`` in its template) WeCom shows as buttons.
    format: str = "markdown"

    @classmethod
    def of(cls, template: str, **values: Any) -> "Answer":
        return cls(template, values)

    def as_card(self) -> "Answer":
        return replace(self, format="card")


@dataclass(frozen=True)
class Picture:
    """A chart sent as an image where the channel can show one, beside the text version of the same
    figures (``bot/charts.py`` draws it from ``spec`` when it is sent)."""

    spec: dict[str, Any]


class Refusal(Exception):
    """A reasoned "no" (not your pair, not allowed, nothing to do): rendered from a template, nothing written."""

    def __init__(self, template: str, **values: Any) -> None:
        super().__init__(template)
        self.answer = Answer(template, values)


class UsageError(Exception):
    """The command was recognised but its words were not: the reply gives the reason, usage and example."""

    def __init__(self, reason: str, example: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.example = example


@dataclass(frozen=True)
class Command:
    keyword: str  # canonical Chinese keyword
    alias: str  # English alias
    handler: Handler
    summary: str
    usage: str
    examples: tuple[str, ...]
    roles: frozenset[str] | None  # None: every bound person
    unbound: bool  # usable before 绑定
    listed_when_bound: bool  # 绑定 still answers a bound person, but their 帮助 need not list it
    private_only: bool
    order: int
    params: tuple[str, ...]
    attachments: bool = False  # a message with files and no command text goes to this command
    private_words: frozenset[str] = frozenset()  # sub-commands (first word after the keyword) that are private
    private_roles: frozenset[str] = frozenset()  # senders holding one of these get answers too private for a group

    def private_for(self, roles: Iterable[str] | None, rest: str) -> bool:
        """Whether this message must go to a private chat: the whole command is, the sender's role
        makes its answer private (a staff member's 编组 lists everyone), or the sub-command is.
        Checked by the gateway before the handler runs, so a refused message leaves nothing."""
        if self.private_only or (roles is not None and self.private_roles & set(roles)):
            return True
        if self.private_words:
            first = Args(rest).peek()
            return first is not None and first.lower() in self.private_words
        return False

    def allowed(self, roles: Iterable[str] | None) -> bool:
        """``roles`` None means the sender is not bound."""
        if roles is None:
            return self.unbound
        return self.roles is None or bool(self.roles & set(roles))


class Commands(Protocol):
    """The declared commands as 帮助 reads them: one looked up, or those a sender may use."""

    def find(self, keyword: str) -> Command | None: ...

    def visible_to(self, roles: Iterable[str] | None) -> list[Command]: ...


class Router:
    def __init__(self) -> None:
        self.commands: list[Command] = []
        self._words: tuple[int, dict[str, list[tuple[str, bool, Command]]]] | None = None

    def _by_first_character(self) -> dict[str, list[tuple[str, bool, Command]]]:
        """Every command word under its first character, in declaration order (rebuilt when commands
        are added): :meth:`match` runs on every message and looks at the few words that can fit."""
        if self._words is None or self._words[0] != len(self.commands):
            words: dict[str, list[tuple[str, bool, Command]]] = {}
            for cmd in self.commands:
                for word, ascii_word in ((cmd.keyword, False), (cmd.alias, True)):
                    words.setdefault(word[:1], []).append((word, ascii_word, cmd))
            self._words = (len(self.commands), words)
        return self._words[1]

    def command(
        self,
        keyword: str,
        alias: str,
        *,
        summary: str,
        usage: str,
        examples: Iterable[str] = (),
        roles: Iterable[str] | None = None,
        unbound: bool = False,
        listed_when_bound: bool = True,
        private_only: bool = False,
        private_words: Iterable[str] = (),
        private_roles: Iterable[str] = (),
        order: int = 100,
        attachments: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a command. Answers carrying names, grades, letters or programme figures are for a
        private chat: ``private_only`` for the whole command, ``private_roles`` when only some senders'
        answers are (staff see everyone's), ``private_words`` for sub-commands (``广播 状态``)."""
        def register(handler: Handler) -> Handler:
            signature = inspect.signature(handler).parameters
            params = tuple(signature)
            # Checked here, on import, so a typo stops start-up instead of failing a person's first message.
            # The gateway passes names, so ``*args``/``**kw`` could not be filled (or would hide a typo).
            unknown = [p for p, v in signature.items()
                       if p not in INJECTABLE or v.kind in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
            if unknown:
                raise TypeError(f"handler {handler.__module__}.{handler.__name__} of {keyword!r} asks for "
                                f"{unknown}, which nothing provides; a handler may name {sorted(INJECTABLE)}")
            self.commands.append(
                Command(
                    keyword=keyword,
                    alias=alias.lower(),
                    handler=handler,
                    # The declaration is the bot's own text: printed as written, never escaped.
                    summary=Trusted(summary),
                    usage=Trusted(usage),
                    examples=tuple(Trusted(e) for e in examples) or (Trusted(usage),),
                    roles=frozenset(str(r) for r in roles) if roles is not None else None,
                    unbound=unbound,
                    listed_when_bound=listed_when_bound,
                    private_only=private_only,
                    order=order,
                    params=params,
                    attachments=attachments,
                    private_words=frozenset(w.lower() for w in private_words),
                    private_roles=frozenset(str(r) for r in private_roles),
                )
            )
            return handler

        return register

    def include(self, *others: "Router") -> None:
        for other in others:
            self.commands.extend(other.commands)
        self._check_unique()

    def _check_unique(self) -> None:
        seen: dict[str, str] = {}
        for cmd in self.commands:
            for word in (cmd.keyword, cmd.alias):
                if word in seen and seen[word] != cmd.keyword:
                    raise ValueError(f"command word {word!r} declared twice")
                seen[word] = cmd.keyword

    def for_attachments(self) -> Command | None:
        """The command that takes files sent without a command (at most one declares it)."""
        return next((c for c in self.commands if c.attachments), None)

    def find(self, keyword: str) -> Command | None:
        for cmd in self.commands:
            if keyword in (cmd.keyword, cmd.alias):
                return cmd
        return None

    def match(self, text: str) -> tuple[Command, str] | None:
        """The command ``text`` starts with and the rest of the text, or None.

        Chinese keywords may run straight into their arguments ("记录面谈 …"); English aliases need a
        word boundary. The longest keyword wins.
        """
        head = fold(text[:16]).lower()
        best: tuple[int, Command] | None = None
        words = self._by_first_character()
        for word, ascii_word, cmd in (*words.get("", ()), *(words.get(head[:1], ()) if head else ())):
            if not head.startswith(word):
                continue
            nxt = head[len(word):len(word) + 1]
            if ascii_word and nxt and (nxt.isalnum() and nxt.isascii()):
                continue
            if best is None or len(word) > best[0]:
                best = (len(word), cmd)
        if best is None:
            return None
        length, cmd = best
        # fold() keeps length for the characters keywords are made of, so slicing the original is safe.
        return cmd, text[length:]

    def visible_to(self, roles: Iterable[str] | None) -> list[Command]:
        listed = (c for c in self.commands if c.allowed(roles) and (roles is None or c.listed_when_bound))
        return sorted(listed, key=lambda c: c.order)
