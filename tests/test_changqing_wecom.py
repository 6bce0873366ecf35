"""常青藤 group posts reaching a real platform channel: the broadcast and the monthly ranking go to a WeCom
group robot (the loopback WeCom fake checks the 2048-byte limit and the robot's rate), private messages
to the local channel."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import TZ
from bot.config import Config
from fakes.wecom import FakeWeCom, point_at, serving
from scheduler.outbox import Dispatcher
from scheduler.runner import run_job
from test_changqing import SMALL, TEXT, load_roster

ROBOT_KEY = "changqing-robot-key"


@pytest.fixture
async def fake(clock):
    async with serving(FakeWeCom(clock, webhook_keys={ROBOT_KEY})) as fake:
        yield fake


@pytest.fixture
def config(config, fake) -> Config:
    point_at(config, fake, {"常青藤二组": ROBOT_KEY})
    config.changqing.groups = ["wecom:常青藤二组"]
    return config


async def test_broadcast_and_monthly_ranking_reach_the_wecom_group(chat, bangdai, services, fake, tmp_path):
    await load_roster(services, tmp_path, SMALL)
    wecom, local = bangdai.channels["wecom"], bangdai.channels["local"]
    assert "常青藤群 1 个：常青藤二组（企业微信）" in await chat.say("s1", f"广播 常青藤 {TEXT}")
    await Dispatcher(services.outbox, wecom, 1000).run_once()
    await Dispatcher(services.outbox, local, 1000).run_once()
    posts = fake.webhooks[ROBOT_KEY]
    assert len(posts) == 1 and TEXT in posts[0].content and fake.webhook_refused == []
    assert TEXT in (await chat.inbox("r1"))[0]["text"]
    assert "已送达 6，排队中 0，失败 0，无法送达 3" in await chat.say("s1", "广播 状态")

    await chat.say("s1", "编组 新建 招商一组 破山行动专班 李忠兴")
    await chat.say("r1", "实绩 协调万洋众创项目土地指标")
    result = await run_job(services, "monthly_ranking", dt.datetime(2026, 11, 30, 17, 0, tzinfo=TZ))
    assert result.queued == 2  # the text, and the same ranking as a picture
    await Dispatcher(services.outbox, wecom, 1000).run_once()
    assert len(posts) == 3 and "1. 招商一组（破山行动专班）1 分，1 项" in posts[1].content
    assert posts[2].msgtype == "image" and len(fake.images[ROBOT_KEY]) == 1
    await wecom.stop()
