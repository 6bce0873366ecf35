"""DingTalk's own bookkeeping: how many OpenAPI calls this organisation has spent each month."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel


class DingTalkApiUsage(SQLModel, table=True):
    """钉钉接口调用量 — OpenAPI calls made in one month (``2026-11``, Asia/Shanghai).

    Standard-edition organisations get 10,000 calls a month across all their apps; staff are warned
    at 80 % of ``[dingtalk] monthly_api_quota``. Kept in the database so a restart doesn't forget it and
    several ``serve`` processes add up to one figure.
    """

    month: str = Field(primary_key=True, max_length=7)
    calls: int = 0
    updated_at: dt.datetime
