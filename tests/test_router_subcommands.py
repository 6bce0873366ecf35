"""Sub-commands declared in the router: a child's own words, roles, private flag and usage, checked by the
gateway from the declaration before the child runs, and listed by 帮助 for whoever may use them.

A small command declared here runs through the real gateway over the standard test roster (u1 mentor,
u2 mentee, u5 staff); the real commands' children are checked through the chat."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.gateway import Gateway
from bot.identity import STAFF_ROLES
from bot.inbound import InboundMessage
from bot.router import Answer, Router
from bot.text import Args
from handlers import people
from handlers.args import word
from storage.models import Role

pytestmark = pytest.mark.usefixtures("seeded")


def drill_router(ran: list[str]) -> Router:
    """练习 (free text, with 新建 for staff only and privately, and 查看 for all) and 演示 (children only)."""
    router = Router()
    drill = router.command("练习", "drill", roles={Role.MENTOR, Role.MENTEE, *STAFF_ROLES}, order=5,
                           summary="练习命令", usage="练习 内容", examples=("练习 你好",))

    @drill
    async def drill_text(args: Args) -> Answer:
        ran.append(f"text:{args.rest()}")
        return Answer.of("help/unbound")

    @drill.sub("新建", "new", roles=STAFF_ROLES, private_only=True, usage="练习 新建 名称", examples=("练习 新建 一组",))
    async def drill_new(args: Args) -> Answer:
        ran.append(f"new:{word(args)}|{args.rest()}")
        return Answer.of("help/unbound")

    @drill.sub("查看", "show", "look", usage="练习 查看 [名称]", examples=("练习 查看",))
    async def drill_show(args: Args) -> Answer:
        ran.append(f"show:{args.rest()}")
        return Answer.of("help/unbound")

    show = router.command("演示", "demo", roles={Role.MENTOR, Role.MENTEE, *STAFF_ROLES}, order=6,
                          summary="演示命令", usage="演示 动作")

    @show.sub("开始", "start", usage="演示 开始", examples=("演示 开始",))
    async def demo_start() -> Answer:
        ran.append("start")
        return Answer.of("help/unbound")

    @show.sub("停止", "stop", roles=STAFF_ROLES, usage="演示 停止 #编号", examples=("演示 停止 #3",))
    async def demo_stop() -> Answer:
        ran.append("stop")
        return Answer.of("help/unbound")

    whole = Router()
    whole.include(people.router, router)
    return whole


@pytest.fixture
def drill(services):
    ran: list[str] = []
    gateway = Gateway(replace(services, router=drill_router(ran)))

    async def say(user: str, text: str, group: bool = False) -> str:
        msg = InboundMessage(channel="local", sender_id=user, conversation_id="g1" if group else user, text=text,
                             is_group=group)
        return "\n".join(r.text for r in await gateway.handle(msg))

    say.ran = ran  # type: ignore[attr-defined]
    return say


async def test_the_first_word_picks_the_child_by_any_of_its_words(drill):
    await drill("u5", "练习 新建 一组")
    await drill("u5", "练习 NEW 二组 备注")  # an English alias, any case
    await drill("u5", "练习：新建，三组")  # punctuation after the keyword and the child's word
    await drill("u2", "练习 look 一组")  # a second alias
    await drill("u2", "练习 查看")
    await drill("u2", "练习 新建一组")  # a longer word is not the child: the parent's free text
    await drill("u2", "练习 随便写点")
    assert drill.ran == ["new:一组|", "new:二组|备注", "new:三组|", "show:一组", "show:", "text:新建一组", "text:随便写点"]


async def test_a_sender_without_the_childs_role_is_refused_before_it_runs(drill):
    reply = await drill("u1", "练习 新建 一组")
    assert "“练习 新建”仅限管理员、组工干部使用" in reply
    assert drill.ran == []
    assert "查看您能用的命令" in reply  # the same refusal a command's roles give


async def test_a_private_child_in_a_group_is_refused_and_its_siblings_are_not(drill):
    reply = await drill("u5", "练习 新建 一组", group=True)
    assert "“练习 新建”请在与我的私聊中发送" in reply and "一组" not in reply
    assert drill.ran == []
    await drill("u5", "练习 查看", group=True)
    assert drill.ran == ["show:"]


async def test_a_childs_wrong_form_answers_with_its_own_usage_and_example(drill):
    reply = await drill("u5", "练习 新建")
    assert "格式：练习 新建 名称" in reply and "例如：**练习 新建 一组**" in reply
    assert "练习 内容" not in reply


async def test_an_unknown_child_lists_the_children_this_sender_may_use(drill):
    staff = await drill("u5", "演示 跳舞")
    assert "请在“演示”后面写上要做的事" in staff
    assert "演示 开始" in staff and "演示 停止 #3" in staff
    mentee = await drill("u2", "演示")
    assert "演示 开始" in mentee and "演示 停止" not in mentee
    assert drill.ran == []
    await drill("u2", "演示 开始")
    assert drill.ran == ["start"]


async def test_help_lists_a_commands_children_per_role(drill):
    staff = await drill("u5", "帮助 练习")
    assert "练习 新建" in staff and "练习 查看" in staff and "（仅限私聊）" in staff
    mentee = await drill("u2", "帮助 练习")
    assert "练习 查看" in mentee and "练习 新建" not in mentee
    assert "练习 新建 名称" in await drill("u5", "帮助 练习 新建")  # one child alone
    assert "练习 新建" not in await drill("u2", "帮助 练习 新建")


def test_a_typo_in_a_childs_parameter_fails_when_it_is_declared():
    router = Router()
    parent = router.command("练习", "drill", summary="练习", usage="练习")
    with pytest.raises(TypeError, match="sesion"):
        @parent.sub("新建", "new", usage="练习 新建")
        async def typo(sesion) -> Answer:  # noqa: ARG001
            raise AssertionError

    with pytest.raises(TypeError, match="kw"):
        @parent.sub("查看", usage="练习 查看")
        async def bag(**kw) -> Answer:
            raise AssertionError


def test_declaration_mistakes_fail_at_start_up():
    router = Router()
    parent = router.command("练习", "drill", summary="练习", usage="练习")

    @parent.sub("新建", "new", usage="练习 新建")
    async def new() -> Answer:
        raise AssertionError

    with pytest.raises(ValueError, match="declared twice"):
        parent.sub("NEW", usage="练习 new")  # the same word, folded
    router.command("空", "empty", summary="空", usage="空")  # neither a handler nor children: never registered
    assert [c.keyword for c in router.commands] == ["练习"]


# --- the real commands ---------------------------------------------------------------------------------

async def test_help_for_a_real_command_lists_the_children_the_sender_may_use(chat):
    staff = await chat.say("u5", "帮助 信箱")
    assert "信箱 待办" in staff and "信箱 关闭 #12 已当面答复" in staff and "信箱 匿名" in staff
    mentee = await chat.say("u2", "帮助 信箱")
    assert "信箱 匿名" in mentee and "信箱 查询" in mentee
    assert "待办" not in mentee and "关闭" not in mentee
