"""Fixtures around the fake DingTalk: ``dingtalk_fake`` (the servers alone) and ``dingtalk`` (Bangdai's
DingTalk channel connected to them through the real SDK).

    async def test_something(dingtalk, seeded):
        text = await dingtalk.fake.say("staff1", "本周")          # 1:1; group="cid…" for a group
        await run_job(dingtalk.services, "weekly_reminder", at)
        await dingtalk.dispatcher.run_once()                    # outbox -> batchSend
        assert dingtalk.fake.batch_calls
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bot.app import Bangdai, enabled_channels
from bot.config import Secret
from scheduler.outbox import Dispatcher, Outbox

from .dingtalk import FakeDingTalk


@pytest.fixture
async def dingtalk_fake():
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


def configure_dingtalk(services: Any, fake: FakeDingTalk, **keys: Any) -> None:
    """Point ``[dingtalk]`` at the fake and enable the channel (the outbox learns it is enabled)."""
    config = services.config.dingtalk
    config.enabled = True
    config.client_id, config.client_secret = fake.client_id, Secret(fake.client_secret)
    config.robot_code, config.api_base = fake.robot_code, fake.api_base
    config.oapi_base = fake.api_base  # the media upload host: the same fake
    config.reconnect_base_seconds, config.reconnect_max_seconds = 0.05, 0.5
    for key, value in keys.items():
        setattr(config, key, value)
    services.outbox = Outbox(services.db, services.clock, services.config, enabled_channels(services.config))


@dataclass
class DingTalkRig:
    fake: FakeDingTalk
    app: Bangdai
    services: Any

    @property
    def channel(self):
        return self.app.channels["dingtalk"]

    @property
    def dispatcher(self) -> Dispatcher:
        return self.app.dispatchers["dingtalk"]

    async def say(self, user: str, text: str, **options: Any) -> str:
        return await self.fake.say(user, text, **options)


@pytest.fixture
async def dingtalk(dingtalk_fake: FakeDingTalk, services):
    """Bangdai's DingTalk channel, started and connected to the fake (dispatchers are not started:
    tests call ``dingtalk.dispatcher.run_once()``)."""
    configure_dingtalk(services, dingtalk_fake)
    app = Bangdai(services)
    rig = DingTalkRig(dingtalk_fake, app, services)
    await rig.channel.start()
    await dingtalk_fake.wait_connected()
    yield rig
    await rig.channel.stop()
