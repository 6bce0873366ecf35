"""预审 over WeCom: pictures and files arrive as encrypted callbacks carrying a MediaId, fetched with
``/cgi-bin/media/get`` (the loopback fake keeps the media, checks the token and answers errcodes as JSON)."""

import hashlib

import pytest
from aiohttp.test_utils import TestClient

from bot.config import Config
from conftest import write
from fakes.wecom import FakeWeCom, point_at, serving
from handlers.sheets.roster import import_roster
from storage.files import FileStore
from storage.models import ReviewFile
from test_wecom import WeComChat, count

ROSTER = """\
姓名,手机,单位,职务,角色,企业微信ID
李娜,13900003456,华埠镇,镇长,徒弟,lina
陈静,13700005678,县委组织部,干部科科长,组工干部,chenjing
"""
PHOTO = b"\xff\xd8\xff\xe0" + b"jpeg" * 1000
DOC = b"PK\x03\x04 word document " + bytes(3000)


@pytest.fixture
async def fake(clock):
    async with serving(FakeWeCom(clock)) as fake:
        yield fake


@pytest.fixture
def config(db_url, fake, tmp_path) -> Config:
    config = Config()
    config.database.url = db_url
    config.schedule.enabled = False
    point_at(config, fake, {})
    config.sanling.files_dir = str(tmp_path / "case_files")
    config.sanling.max_file_mb = 0.01  # 10 KB
    return config


@pytest.fixture
async def wecom(client: TestClient, bangdai, fake, clock, services, tmp_path) -> WeComChat:
    await bangdai.dispatchers["wecom"].stop()
    report = await import_roster(services.db, write(tmp_path, "roster.csv", ROSTER), now=clock.now())
    assert report.ok, report.lines()
    return WeComChat(client, bangdai, fake, clock)


def file_message(build, user: str, media_id: str, name: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{build.corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{build._now()}</CreateTime><MsgType><![CDATA[file]]></MsgType>"
            f"<MediaId><![CDATA[{media_id}]]></MediaId><FileName><![CDATA[{name}]]></FileName>"
            f"<MsgId>{next(build._msg_ids)}</MsgId><AgentID>{build.agent_id}</AgentID></xml>")


async def send(wecom: WeComChat, user: str, plain: str) -> str:
    before = len(wecom.fake.inbox(user))
    assert await wecom.send(plain) == 200
    return "\n".join(wecom.fake.inbox(user)[before:])


async def test_pictures_and_files_reach_the_case_through_media_get(wecom, fake, services, config):
    assert "已开始预审 **#1" in await wecom.say("lina", "预审 借用顶岗")
    kept = await send(wecom, "lina", wecom.build.image("lina", media_id=fake.add_media(PHOTO)))
    assert "已收到 1 个文件，归入第 1 项：图片1" in kept and fake.media_gets == 1
    await wecom.say("lina", "预审 材料 2")
    assert "借用事由.docx" in await send(wecom, "lina", file_message(wecom.build, "lina", fake.add_media(DOC), "借用事由.docx"))
    store = FileStore(config.sanling.files_dir)
    assert store.read(hashlib.sha256(PHOTO).hexdigest()) == PHOTO and store.read(hashlib.sha256(DOC).hexdigest()) == DOC
    assert "已提交预审 **#1" in await wecom.say("lina", "预审 提交")
    assert "新的预审 #1" in "\n".join(fake.inbox("chenjing"))


async def test_an_expired_token_is_fetched_again_once(wecom, fake, services):
    await wecom.say("lina", "预审 借用顶岗")
    fake.expire_tokens()
    before = fake.token_fetches
    assert "已收到 1 个文件" in await send(wecom, "lina", wecom.build.image("lina", media_id=fake.add_media(PHOTO)))
    assert fake.token_fetches == before + 1


async def test_unknown_media_and_too_large_files_are_refused(wecom, fake, services, config):
    await wecom.say("lina", "预审 借用顶岗")
    gone = await send(wecom, "lina", wecom.build.image("lina", media_id="media-expired"))
    assert "这个文件没有收到" in gone
    big = await send(wecom, "lina", file_message(wecom.build, "lina", fake.add_media(bytes(20 * 1024)), "扫描.pdf"))
    assert "“扫描.pdf”太大" in big and "最多 10 KB" in big
    assert await count(services, ReviewFile) == 0 and FileStore(config.sanling.files_dir).names() == set()


async def test_a_retried_picture_callback_is_fetched_once(wecom, fake, services):
    await wecom.say("lina", "预审 借用顶岗")
    sealed = wecom.build.seal(wecom.build.image("lina", media_id=fake.add_media(PHOTO)))
    assert await wecom.post(*sealed) == 200
    await wecom.flush()
    assert await wecom.post(*sealed) == 200  # WeCom's retry, seconds later
    await wecom.flush()
    assert fake.media_gets == 1 and await count(services, ReviewFile) == 1
    assert len([m for m in fake.inbox("lina") if "已收到 1 个文件" in m]) == 1
