"""Declared injection (issue 13 point 4): a handler names only what ``bot.router.INJECTABLE`` lists, the
router refuses anything else when the command is declared (at import, so at start-up), and the gateway
fills every declared name. No handler gets a whole bag (``services``, ``router``)."""

from __future__ import annotations

import pytest

from bot.app import build_services
from bot.gateway import Gateway
from bot.inbound import InboundMessage
from bot.router import INJECTABLE, Answer, Router


def _declare(router: Router, handler) -> None:
    router.command("试验", "probe", unbound=True, summary="试验", usage="试验")(handler)


async def _typo(sender, sesion):  # "session" misspelt
    return Answer.of("help/unbound")


async def _whole_services(sender, services):  # the bag that is no longer handed out
    return Answer.of("help/unbound")


async def _whole_router(sender, router):
    return Answer.of("help/unbound")


async def _catch_all(sender, **everything):  # would hide what the handler uses
    return Answer.of("help/unbound")


async def _star_args(sender, *args):  # "args" by name, but the gateway passes names
    return Answer.of("help/unbound")


@pytest.mark.parametrize("handler, name", [(_typo, "sesion"), (_whole_services, "services"),
                                           (_whole_router, "router"), (_catch_all, "everything"),
                                           (_star_args, "args")])
def test_a_parameter_nothing_provides_fails_when_declared(handler, name: str) -> None:
    router = Router()
    with pytest.raises(TypeError, match=f"'{name}'"):
        _declare(router, handler)
    assert router.commands == []  # nothing half-registered


def test_every_command_of_the_app_names_only_declared_things(config) -> None:
    """Walks the router the app really builds: every handler, every parameter."""
    router = build_services(config).router
    assert len(router.commands) > 20
    for command in router.commands:
        assert set(command.params) <= INJECTABLE, (command.keyword, command.params)
    used = {p for c in router.commands for p in c.params}
    assert "services" not in used and "router" not in used
    assert {"renderer", "outbox", "commands"} <= used  # the narrow things that replaced the bags


async def test_the_gateway_fills_every_declared_name(services) -> None:
    """A handler asking for every injectable gets each filled, with the service's own objects."""
    seen: dict = {}

    async def probe(msg, sender, args, session, clock, calendar, config, command, notify, renderer, outbox, commands,
                    fetch):
        seen.update(msg=msg, sender=sender, args=args.rest(), session=session, clock=clock, calendar=calendar,
                    config=config, command=command, notify=notify, renderer=renderer, outbox=outbox,
                    commands=commands, fetch=fetch)
        return Answer.of("help/unbound")

    router = Router()
    _declare(router, probe)
    assert set(router.commands[0].params) == INJECTABLE  # the probe covers the whole set
    services.router = router
    msg = InboundMessage("local", "u9", "u9", "试验 一二", msg_id="m1")
    [reply] = await Gateway(services).handle(msg)
    assert reply.text == services.renderer.reply(Answer.of("help/unbound")).text
    assert seen["msg"].text == "试验 一二" and seen["args"] == "一二" and seen["sender"] is None
    assert seen["session"] is not None and seen["fetch"] is None  # no files came with the message
    assert seen["clock"] is services.clock and seen["config"] is services.config
    assert seen["renderer"] is services.renderer and seen["outbox"] is services.outbox
    assert seen["calendar"] is services.calendar and seen["notify"].outbox is services.outbox
    assert seen["command"] is router.commands[0]
    assert seen["commands"].find("probe") is router.commands[0]
    assert [c.keyword for c in seen["commands"].visible_to(None)] == ["试验"]
