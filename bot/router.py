"""Commands declare themselves; help, permission checks and wrong-form answers come from the declaration.

Each ``handlers/`` module makes a :class:`Router` and decorates its handlers::

    router = Router()

    @router.command("记录", "log", roles={Role.MENTOR, Role.MENTEE},
                    summary="记录一次师徒联系", usage="记录 [对方姓名] [日期] 方式 内容",
                    examples=("记录 面谈 讨论招商项目推进方法",))
    async def log_contact(sender: Sender, args: Args, session: AsyncSession, clock: Clock) -> Answer: ...

A command with sub-commands (``编组 新建 …``, ``信箱 待办``) declares each child on the command's
declaration, with its own words, roles, private-only flag, usage and examples::

    squad = router.command("编组", "squad", roles=SQUAD_ROLES, ...)

    @squad                                  # the parent: no child word (``编组``, ``编组 招商一组``)
    async def my_squad(...) -> Answer: ...

    @squad.sub("新建", "new", roles=STAFF_ROLES, private_only=True, usage="编组 新建 组名 专班 [组长]",
               examples=("编组 新建 招商一组 破山行动专班",))
    async def create(...) -> Answer: ...

The first word after the keyword picks the child (folded and lower-cased, like keywords); the gateway
checks the child's roles and private flag before it runs, from the declaration, and 帮助 lists the
children a sender may use. A parent without a handler answers its children's usage.

A handler names what it needs, from :data:`INJECTABLE`; the gateway passes exactly those, and a name
nothing provides fails when the command is declared (at import), not on someone's first message.
It returns an :class:`Answer` (a template and its values), or raises :class:`UsageError` (wrong form:
the answer repeats the command's usage and example) or :class:`Refusal` (a reasoned "no").
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Iterable, Protocol

from .text import _SEPARATORS, Reasoned, Trusted, fold

# What may follow a sub-command's word: the end, a space, punctuation, a ticket's # or a number.
_CHILD_END = re.compile(r"$|[\s#＃0-9０-９:：,，;；、]")

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
    """The command was recognised but its words were not: the reply gives the reason, usage and example.

    ``reason`` is a template (``errors/usage/…`` or a programme's ``…/usage/…``) rendered with
    ``values``, so the department rewords it without Python; ``example`` replaces the (sub-)command's
    first declared example when the right form depends on what was typed."""

    def __init__(self, reason: str, example: str | None = None, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.example = example
        self.values = values
        self.command: "Command | None" = None  # set by the gateway: whose usage the answer repeats
        self.children: "list[Command]" = []  # set by the gateway: a parent's children this sender may use

    @classmethod
    def because(cls, error: Reasoned, example: str | None = None) -> "UsageError":
        """The usage answer for a date, phrase or other :class:`~bot.text.Reasoned` error in the words."""
        return cls(error.reason, example, **error.values)


@dataclass(eq=False)
class Command:
    """A declared command, or a sub-command of one (``parent`` set, ``keyword`` the full "编组 新建")."""

    keyword: str  # canonical Chinese keyword ("编组"; a child's is "编组 新建")
    alias: str  # English alias ("squad"; a child's is its first alias, "new")
    handler: Handler | None  # None: a parent that only has children
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
    private_roles: frozenset[str] = frozenset()  # senders holding one of these get answers too private for a group
    parent: "Command | None" = None
    words: tuple[str, ...] = ()  # a child's own words after the parent's keyword ("新建", "new"), folded, lower
    children: list["Command"] = field(default_factory=list)

    def private_for(self, roles: Iterable[str] | None) -> bool:
        """Whether this message must go to a private chat: the whole command (or sub-command) is, or
        the sender's role makes its answer private (a staff member's 编组 lists everyone). Checked by
        the gateway before the handler runs, so a refused message leaves nothing."""
        return self.private_only or (roles is not None and bool(self.private_roles & set(roles)))

    def child(self, rest: str) -> "tuple[Command, str] | None":
        """The sub-command ``rest`` starts with, and the text after its word; or None.

        The word must end the text or be followed by a space, punctuation, ``#`` or a digit
        (``预审 通过#7``, ``编组：新建``), so a longer word is never taken for one (``预审 转正`` is not
        ``转``); the longest word wins."""
        if not self.children:
            return None
        text = rest.strip().lstrip(_SEPARATORS).strip()
        head = fold(text[:24]).lower()
        best: tuple[int, Command] | None = None
        for child in self.children:
            for word in child.words:
                if head.startswith(word) and _CHILD_END.match(head, len(word)) and (best is None or len(word) > best[0]):
                    best = (len(word), child)
        if best is None:
            return None
        # fold() keeps length for the characters words are made of, so slicing the original is safe.
        return best[1], text[best[0]:]

    def children_for(self, roles: Iterable[str] | None) -> list["Command"]:
        """The sub-commands a sender may use, in declaration order (帮助 编组, a usage answer)."""
        return [c for c in self.children if c.allowed(roles)]

    def allowed(self, roles: Iterable[str] | None) -> bool:
        """``roles`` None means the sender is not bound."""
        if roles is None:
            return self.unbound
        return self.roles is None or bool(self.roles & set(roles))


class Commands(Protocol):
    """The declared commands as 帮助 reads them: one looked up, or those a sender may use."""

    def find(self, keyword: str) -> Command | None: ...

    def visible_to(self, roles: Iterable[str] | None) -> list[Command]: ...


def _check_params(handler: Handler, what: str) -> tuple[str, ...]:
    """The handler's parameter names, each one :data:`INJECTABLE` gives. Checked when the command is
    declared, so a typo stops start-up instead of failing a person's first message. The gateway passes
    names, so ``*args``/``**kw`` could not be filled (or would hide a typo)."""
    signature = inspect.signature(handler).parameters
    unknown = [p for p, v in signature.items()
               if p not in INJECTABLE or v.kind in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
    if unknown:
        raise TypeError(f"handler {handler.__module__}.{handler.__name__} of {what!r} asks for "
                        f"{unknown}, which nothing provides; a handler may name {sorted(INJECTABLE)}")
    return tuple(signature)


class Declaration:
    """What :meth:`Router.command` returns: decorate the parent's handler with it (``@squad``), and
    declare children with :meth:`sub` (``@squad.sub("新建", "new", …)``)."""

    def __init__(self, command: Command, router: "Router") -> None:
        self.command = command
        self.router = router
        # Without declared examples a command shows its usage; a parent with only children, its first
        # child's example (the children a sender may use are listed beside it, by role).
        self.own_examples = bool(command.examples)

    def __call__(self, handler: Handler) -> Handler:
        if self.command.handler is not None:
            raise ValueError(f"command {self.command.keyword!r} has a handler already")
        self.command.params = _check_params(handler, self.command.keyword)
        self.command.handler = handler
        if not self.own_examples:
            self.command.examples = (self.command.usage,)
        self._register()
        return handler

    def _register(self) -> None:
        """The command joins its router once something runs it: a handler that failed its check, or a
        declaration never completed, leaves nothing half-registered."""
        if self.command not in self.router.commands:
            self.router.commands.append(self.command)

    def sub(
        self,
        word: str,
        *aliases: str,
        usage: str,
        examples: Iterable[str] = (),
        summary: str = "",
        roles: Iterable[str] | None = None,
        private_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a child: the first word after the keyword is ``word`` or one of ``aliases``.
        ``roles`` None: whoever may use the parent; ``private_only`` adds to the parent's."""
        parent = self.command
        words = tuple(dict.fromkeys(fold(w).lower() for w in (word, *aliases)))
        taken = {w for c in parent.children for w in c.words}
        if taken & set(words):
            raise ValueError(f"sub-command word {sorted(taken & set(words))} of {parent.keyword!r} declared twice")
        keyword = f"{parent.keyword} {word}"

        def register(handler: Handler) -> Handler:
            params = _check_params(handler, keyword)
            parent.children.append(Command(
                keyword=keyword,
                alias=(aliases[0] if aliases else word).lower(),
                handler=handler,
                summary=Trusted(summary or usage),
                usage=Trusted(usage),
                examples=tuple(Trusted(e) for e in examples) or (Trusted(usage),),
                roles=frozenset(str(r) for r in roles) if roles is not None else parent.roles,
                unbound=parent.unbound if roles is None else False,
                listed_when_bound=True,
                private_only=private_only or parent.private_only,
                order=parent.order,
                params=params,
                private_roles=parent.private_roles,
                parent=parent,
                words=words,
            ))
            if not parent.examples:
                parent.examples = (parent.children[0].examples[0],)
            self._register()
            return handler

        return register


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
        private_roles: Iterable[str] = (),
        order: int = 100,
        attachments: bool = False,
    ) -> Declaration:
        """Declare a command; use the result as the decorator of its handler, and its :meth:`~Declaration.sub`
        for sub-commands. Answers carrying names, grades, letters or programme figures are for a
        private chat: ``private_only`` for the whole command, ``private_roles`` when only some senders'
        answers are (staff see everyone's); a sub-command declares its own ``private_only``."""
        command = Command(
            keyword=keyword,
            alias=alias.lower(),
            handler=None,
            # The declaration is the bot's own text: printed as written, never escaped.
            summary=Trusted(summary),
            usage=Trusted(usage),
            examples=tuple(Trusted(e) for e in examples),
            roles=frozenset(str(r) for r in roles) if roles is not None else None,
            unbound=unbound,
            listed_when_bound=listed_when_bound,
            private_only=private_only,
            order=order,
            params=(),
            attachments=attachments,
            private_roles=frozenset(str(r) for r in private_roles),
        )
        return Declaration(command, self)

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
