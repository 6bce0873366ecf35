"""Shared set-up for the 三零 tests: a second staff member, the 三联 links, outbox delivery, counting."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from conftest import SEEDS, more_people, seeded_with
from scheduler.outbox import Dispatcher

# 孙丽 is a second staff member (管理员), so notifications "to every staff member" are seen to reach two.
MORE_ROSTER = """\
姓名,手机,单位,职务,角色,本地ID
孙丽,13600007777,县委组织部,副部长,管理员,u7
"""
# 陈静 (组工干部) links two townships, 张伟 (部领导 in this story) a department and a 专班.
LIAISONS_CSV = """\
联系人,单位,类型
陈静,华埠镇,乡镇
陈静,城关街道,乡镇
张伟,县发改局,部门
张伟,招商引资专班,专班
"""
EVERYONE = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]
STAFF = ["u5", "u7"]


SEEDS["sanling"] = ("seeded", more_people(MORE_ROSTER, LIAISONS_CSV))


@pytest.fixture
async def sanling(seeded, request, tmp_path):
    """The standard roster plus 孙丽 (管理员, u7) and the 三联 links above."""
    return await seeded_with("sanling", request, seeded, tmp_path)


async def deliver(services, bangdai) -> int:
    """Deliver everything due to local users. The app's own dispatcher is stopped first: it runs in the
    background of the test server and could otherwise hold some messages in flight while we read inboxes."""
    await bangdai.dispatchers["local"].stop()
    dispatcher, total = Dispatcher(services.outbox, bangdai.channels["local"], 100), 0
    while attempted := await dispatcher.run_once():
        total += attempted
    return total


async def inboxes(chat, users=EVERYONE) -> dict[str, list[str]]:
    return {u: [m["text"] for m in await chat.inbox(u)] for u in users}


async def count(services, model, *where) -> int:
    async with services.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model).where(*where))).one()


async def rows(services, model, *where):
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).where(*where))).all())
