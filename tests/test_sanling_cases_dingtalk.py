"""预审 over DingTalk: file and picture messages reach the case through the robot file-download API
(``messageFiles/download`` → a short-lived URL → the bytes), with the real SDK against the loopback fake."""

import hashlib

import pytest

from conftest import write
from storage.files import FileStore
from storage.models import CaseStatus, ProcessedMessage, ReviewCase, ReviewFile
from test_dingtalk import count, roster  # noqa: F401  (fixture: the programme with DingTalk ids)

PDF = b"%PDF-1.4 " + bytes(range(256)) * 40  # ~10 KB
PHOTO = b"\xff\xd8\xff\xe0" + b"jpeg" * 500


@pytest.fixture(autouse=True)
def case_files(config, tmp_path):
    config.sanling.files_dir = str(tmp_path / "case_files")
    config.sanling.max_file_mb = 0.05  # 51 KB
    return FileStore(config.sanling.files_dir)


async def rows(services, model):
    from sqlmodel import select
    async with services.db.transaction() as s:
        return list((await s.exec(select(model).order_by(model.id))).all())


async def test_files_and_pictures_are_downloaded_into_the_case(dingtalk, roster, services, case_files):
    fake = dingtalk.fake
    assert "已开始预审 **#1 干部借用顶岗审批" in await dingtalk.say("dt_ln", "预审 借用顶岗")
    kept = await fake.send_file("dt_ln", PDF, name="借用审批表.pdf")
    assert "已收到 1 个文件，归入第 1 项：借用审批表.pdf" in kept
    [call] = fake.download_calls
    assert call.status == 200 and call.body["robotCode"] == fake.robot_code and call.body["downloadCode"].startswith("dc")
    assert fake.file_gets == 1
    await dingtalk.say("dt_ln", "预审 材料 2")
    assert "归入第 2 项" in await fake.send_file("dt_ln", PHOTO, kind="picture")
    files = await rows(services, ReviewFile)
    assert [(f.name, f.kind, f.item_number) for f in files] == [("借用审批表.pdf", "file", 1), ("图片2", "picture", 2)]
    assert case_files.read(hashlib.sha256(PDF).hexdigest()) == PDF and case_files.read(files[1].sha256) == PHOTO
    assert "已提交预审 **#1" in await dingtalk.say("dt_ln", "预审 提交")
    # Staff hear of it through the OpenAPI; the decision reaches the submitter the same way.
    await dingtalk.dispatcher.run_once()
    assert any("新的预审 #1" in s.text and s.users == ["dt_cj"] for s in fake.sent if s.via == "batchSend")
    assert "已通过" in await dingtalk.say("dt_cj", "预审 通过 #1")
    await dingtalk.dispatcher.run_once()
    assert any("已通过 ✅" in s.text and s.users == ["dt_ln"] for s in fake.sent if s.via == "batchSend")


async def test_a_slow_download_holds_up_nobody_else(dingtalk, roster, services):
    """The file is fetched outside any transaction: on SQLite a transaction would stop every message."""
    fake = dingtalk.fake
    await dingtalk.say("dt_ln", "预审 借用顶岗")
    release = fake.hold_files()
    pushed = await fake.push_file("dt_ln", PDF, name="表.pdf")
    await fake.wait_until(lambda: fake.download_calls, what="the download to start")
    assert "本周帮带情况" in await dingtalk.say("dt_zw", "本周", timeout=5)
    assert fake.replies_to(pushed) == []
    release.set()
    assert "已收到 1 个文件" in "\n".join(s.text for s in await fake.wait_reply(pushed))


async def test_a_redelivered_file_message_is_fetched_once(dingtalk, roster, services):
    fake = dingtalk.fake
    await dingtalk.say("dt_ln", "预审 借用顶岗")
    pushed = await fake.push_file("dt_ln", PDF, name="表.pdf")
    await fake.wait_reply(pushed)
    await fake.redeliver(pushed)
    await fake.wait_acked(pushed, 2)
    assert "预审" in await dingtalk.say("dt_ln", "预审 查询")  # the redelivery was handled (or dropped) before this
    assert len(fake.replies_to(pushed)) == 1 and len(fake.download_calls) == 1
    assert await count(services, ReviewFile) == 1


async def test_too_large_and_expired_files_are_refused_clearly(dingtalk, roster, services, case_files):
    fake = dingtalk.fake
    await dingtalk.say("dt_ln", "预审 借用顶岗")
    big = await fake.send_file("dt_ln", bytes(60 * 1024), name="扫描件.pdf")
    assert "“扫描件.pdf”太大（60 KB），每个文件最多 51 KB，没有保存" in big
    pushed = await fake.push_file("dt_ln", PDF, name="表.pdf", expired=True)
    reply = "\n".join(s.text for s in await fake.wait_reply(pushed))
    assert "这个文件没有收到" in reply and "重新发送" in reply
    assert fake.download_calls[-1].status == 400 and fake.file_gets == 1  # only the big one was fetched
    assert "已收到 1 个文件" in await fake.send_file("dt_ln", PDF, name="表.pdf")
    assert case_files.names() == {hashlib.sha256(PDF).hexdigest()}


async def test_a_file_without_an_open_case_is_answered_and_not_fetched(dingtalk, roster, services):
    fake = dingtalk.fake
    reply = await fake.send_file("dt_ln", PDF, name="表.pdf")
    assert "没有正在填写的预审" in reply and "预审 借用顶岗" in reply
    assert fake.download_calls == [] and await count(services, ProcessedMessage) == 1
    unbound = await fake.send_file("dt_nobody", PDF, name="表.pdf")
    assert "绑定" in unbound and fake.download_calls == []


async def test_a_file_in_a_group_is_not_taken(dingtalk, roster, services):
    fake = dingtalk.fake
    pushed = await fake.push_file("dt_ln", PDF, name="表.pdf", group="cidSomeGroup")
    [sent] = await fake.wait_reply(pushed)
    assert "私聊" in sent.text and fake.download_calls == []
    assert await count(services, ReviewCase) == 0
