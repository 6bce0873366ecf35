"""Pure logic: reading what people type, dates, weeks, masks, the bind lock."""

import datetime as dt

import pytest

from bot.dates import DateError, check_recent, parse_day
from handlers.sheets.reader import CellError, sheet_date
from bot.text import Args, clean, fold, mask_phone, md_escape
from bot.clock import period_bounds
from handlers.mentoring.queries import lapsed_weeks
from handlers.mentoring.pairs import PairView, Term
from handlers.people import lock_until

TODAY = dt.date(2026, 11, 19)


def test_clean_strips_mentions_and_fullwidth_space():
    assert clean("@帮带助手 本周") == "本周"
    assert clean("＠帮带助手\u2005\u3000本周  ") == "本周"
    assert clean("  @a @b  帮助") == "帮助"
    assert fold("答复 ＃１２：好") == "答复 #12:好"


def test_args_keeps_free_text_as_typed():
    args = Args("：面谈　讨论招商项目，推进方法？")
    assert args.take() == "面谈"
    assert args.rest() == "讨论招商项目，推进方法？"
    assert not Args("   ")
    assert Args("ＡＢ c").take() == "AB"


@pytest.mark.parametrize("token,expected", [
    ("今天", TODAY), ("昨天", TODAY - dt.timedelta(days=1)), ("前天", TODAY - dt.timedelta(days=2)),
    ("2026-11-19", TODAY), ("2026/11/3", dt.date(2026, 11, 3)), ("11-19", TODAY), ("11月19日", TODAY),
    ("１１月３日", dt.date(2026, 11, 3)), ("2026年11月3日", dt.date(2026, 11, 3)),
    ("12-31", dt.date(2025, 12, 31)),  # a month-day ahead of today means last year's
    ("面谈", None), ("李娜", None), ("12", None),
])
def test_parse_day(token, expected):
    assert parse_day(token, TODAY) == expected


def test_impossible_dates_and_range():
    from bot.config import ProgrammeConfig
    from bot.render import Renderer

    render = Renderer(ProgrammeConfig().templates_dir)
    with pytest.raises(DateError) as caught:
        parse_day("2026-02-30", TODAY)
    assert "不存在" in render.text(caught.value.reason, **caught.value.values)
    with pytest.raises(DateError) as caught:
        check_recent(parse_day("明天", TODAY), TODAY, 30)
    assert "将来" in render.text(caught.value.reason, **caught.value.values)
    with pytest.raises(DateError) as caught:
        check_recent(TODAY - dt.timedelta(days=31), TODAY, 30)
    assert "已超过 30 天" in render.text(caught.value.reason, **caught.value.values)
    check_recent(TODAY - dt.timedelta(days=30), TODAY, 30)
    assert sheet_date("2026/3/1") == dt.date(2026, 3, 1)
    assert sheet_date(dt.datetime(2026, 3, 1, 0, 0)) == dt.date(2026, 3, 1)
    with pytest.raises(CellError):
        sheet_date("三月一日")


def test_mask_phone_and_markdown_escape():
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone(None) == ""
    assert md_escape("*重点* [链接]") == r"\*重点\* \[链接\]"


def _bangdai(*terms: tuple[dt.date, dt.date | None]) -> PairView:
    from storage.models import Pairing, PairingMentor, Person

    mentor = Person(id=1, name="张伟", phone="1", created_at=dt.datetime(2026, 1, 1))
    rows = [Term(mentor, PairingMentor(id=i, pairing_id=1, person_id=1, start_date=s, end_date=e))
            for i, (s, e) in enumerate(terms)]
    return PairView(Pairing(id=1, mentee_id=2, start_date=terms[0][0], created_at=dt.datetime(2026, 1, 1)),
                    Person(id=2, name="李娜", phone="2", created_at=dt.datetime(2026, 1, 1)), rows)


def test_lapsed_weeks_counts_whole_weeks_before_this_one():
    start = dt.date(2026, 11, 2)  # Monday, W45
    v = _bangdai((start, None))
    assert lapsed_weeks(v, TODAY, None) == 2  # W45, W46 without a 面谈; W47 is not over
    assert lapsed_weeks(v, TODAY, dt.date(2026, 11, 10)) == 0  # last week had one
    assert lapsed_weeks(v, TODAY, dt.date(2026, 11, 4)) == 1  # W46 missing
    assert lapsed_weeks(v, TODAY, dt.date(2026, 11, 18)) == 0  # a 面谈 this week ends the lapse
    assert lapsed_weeks(_bangdai((dt.date(2026, 11, 17), None)), TODAY, None) == 0  # started this week
    # a week in which nobody mentored stops the count: W45 had no mentor
    gap = _bangdai((dt.date(2026, 10, 1), dt.date(2026, 11, 2)), (dt.date(2026, 11, 9), None))
    assert lapsed_weeks(gap, TODAY, None) == 1
    assert period_bounds("quarter", TODAY) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert period_bounds("quarter", dt.date(2026, 2, 3)) == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))


def test_lock_after_five_failures_in_an_hour():
    now = dt.datetime(2026, 11, 19, 10, 0, tzinfo=dt.timezone.utc)
    hour = dt.timedelta(hours=1)
    four = [now - dt.timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert lock_until(four, now, 5, hour) is None
    five = four + [now - dt.timedelta(minutes=5)]
    assert lock_until(five, now, 5, hour) == now - dt.timedelta(minutes=1) + hour
    spread = [now - dt.timedelta(minutes=m) for m in (1, 20, 40, 61, 80)]
    assert lock_until(spread, now, 5, hour) is None  # five failures, but not within one hour
    assert lock_until(five, now + hour, 5, hour) is None  # the lock has run out


def test_templates_keep_the_newline_after_an_inline_block_tag():
    """A text line ending in ``{% endif %}`` loses its newline under trim_blocks; templates use ``+%}``."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    offenders = []
    for path in root.rglob("*.md"):
        lines = path.read_text(encoding="utf-8").split("\n")
        for n, line in enumerate(lines[:-1], start=1):
            if re.search(r"\S.*\{%-?[^%]*[^+]%\}\s*$", line) and not re.match(r"^\s*\{%", line):
                offenders.append(f"{path.relative_to(root)}:{n}")
    assert offenders == []


@pytest.mark.parametrize("utc,day,time", [
    (dt.datetime(2026, 11, 19, 16, 30, tzinfo=dt.timezone.utc), "11月20日", "11月20日 00:30"),  # 00:30 Beijing
    (dt.datetime(2026, 11, 19, 15, 30, tzinfo=dt.timezone.utc), "11月19日", "11月19日 23:30"),  # 23:30 Beijing
    (dt.datetime(2026, 11, 19, 16, 30), "11月20日", "11月20日 00:30"),  # a naive stored moment is UTC
])
def test_every_date_people_read_is_a_beijing_date(utc, day, time):
    from bot.dates import beijing_day
    from bot.render import Renderer

    env = Renderer("templates").env
    assert env.from_string("{{ v | cn_date }}").render(v=utc) == day
    assert env.from_string("{{ v | cn_time }}").render(v=utc) == time
    assert beijing_day(utc).day == int(day[3:5])
    assert env.from_string("{{ v | cn_date }}").render(v=dt.date(2026, 11, 19)) == "11月19日"  # a date is as is
