"""DingTalk messages as people send them, not only typed text: rich text (words around a photo), voice
(DingTalk's own transcript), pictures and files, and group chatter that does not @ the robot. Each
payload is pushed in DingTalk's documented shape through the real dingtalk-stream client."""

from __future__ import annotations

import pytest
from sqlmodel import select

from conftest import import_programme
from storage.models import ContactLog

ROSTER = """\
姓名,手机,单位,职务,角色,钉钉ID,出生年份
张伟,13800001234,县委组织部,原副部长,导师,dt_zw,1962
王芳,13800002345,县发改局,原局长,导师,dt_wf,1963
李娜,13900003456,华埠镇,镇长,徒弟,dt_ln,1986
赵强,13900004567,城关街道,主任,徒弟,dt_zq,1988
陈静,13700005678,县委组织部,干部科科长,组工干部,dt_cj,1981
李忠兴,13600001111,县人大,原主任,退职干部,dt_lzx,1958
"""
GROUP = "cidQingLanGroup01"


@pytest.fixture
async def roster(services, tmp_path):
    await import_programme(services.db, tmp_path, ROSTER, now=services.clock.now())
    return services


async def reply_to(fake, pushed) -> str:
    return "\n".join(s.text for s in await fake.wait_reply(pushed))


async def test_rich_text_is_its_text_parts_in_order_as_one_message(dingtalk, roster, services):
    fake = dingtalk.fake
    content = {"richText": [{"text": "记录 面谈"},
                            {"type": "picture", "downloadCode": "dl-photo-1", "pictureDownloadCode": "p-1"},
                            {"text": "讨论招商项目推进方法\n"}]}
    pushed = await fake.push_message("dt_zq", "richText", content)
    text = await reply_to(fake, pushed)
    assert "已记录" in text, text
    async with services.db.transaction() as s:
        [log] = (await s.exec(select(ContactLog))).all()
    assert (log.mode, log.note) == ("面谈", "讨论招商项目推进方法")
    # A rich text that is only a photo has no words: the one-line answer, nothing else.
    only_photo = await fake.push_message("dt_zq", "richText", {"richText": [{"type": "picture", "downloadCode": "d"}]})
    assert "没有能看懂的文字" in await reply_to(fake, only_photo)


async def test_voice_is_handled_as_what_dingtalk_heard_and_the_answer_says_so(dingtalk, roster):
    fake = dingtalk.fake
    pushed = await fake.push_message("dt_lzx", "audio", {"duration": 2300, "downloadCode": "dl-voice-1",
                                                         "recognition": "报名 招商引资联络员"})
    [sent] = await fake.wait_reply(pushed)
    assert sent.text.startswith("听到：“报名 招商引资联络员”"), sent.text
    assert "招商引资联络员" in sent.text.split("\n", 1)[1]
    assert "报名" in sent.text and "看不懂" not in sent.text
    # Redelivered: the same answer once, nothing new.
    await fake.redeliver(pushed)
    await fake.wait_acked(pushed, 2)
    assert "本周帮带情况" in await dingtalk.say("dt_zq", "本周")
    assert len(fake.replies_to(pushed)) == 1
    # DingTalk could not transcribe it: say so, and how to go on.
    silent = await fake.push_message("dt_lzx", "audio", {"duration": 800, "downloadCode": "dl-voice-2"})
    text = await reply_to(fake, silent)
    assert "没听清" in text and "本周" in text


async def test_pictures_and_files_go_on_as_files(dingtalk, roster):
    """As on main: a picture or file message is handed to the gateway as an attachment (预审)."""
    fake = dingtalk.fake
    for msgtype, content in (("picture", {"downloadCode": "dl-1"}),
                             ("file", {"downloadCode": "dl-2", "fileName": "总结.docx", "spaceId": "1", "fileId": "2"})):
        pushed = await fake.push_message("dt_ln", msgtype, content)
        text = await reply_to(fake, pushed)
        assert "预审" in text and "没听清" not in text and "没有能看懂的文字" not in text


async def test_in_a_group_only_messages_that_at_the_robot_are_handled(dingtalk, roster, services):
    fake = dingtalk.fake
    data, session = fake.text_data("dt_zq", "记录 面谈 群里随口一说", group=GROUP)
    data["isInAtList"] = False
    ignored = await fake.push_data(data, user="dt_zq", session=session)
    not_at = await fake.push_message("dt_zq", "richText", {"richText": [{"text": "本周"}]}, group=GROUP, at_bot=False)
    await fake.wait_acked(ignored)
    await fake.wait_acked(not_at)
    assert "已记录" in await dingtalk.say("dt_zq", "记录 面谈 群里正式记录", group=GROUP)
    assert not fake.replies_to(ignored) and not fake.replies_to(not_at)
    async with services.db.transaction() as s:
        notes = [c.note for c in (await s.exec(select(ContactLog))).all()]
    assert notes == ["群里正式记录"]
    voice = await fake.push_message("dt_zq", "audio", {"recognition": "本周", "duration": 700, "downloadCode": "v"},
                                    group=GROUP)
    assert (await reply_to(fake, voice)).split("\n")[0].endswith("听到：“本周”")
