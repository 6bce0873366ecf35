"""Configuration: embedded defaults, an optional TOML file, then ``BANGDAI_SECTION__KEY`` variables.

Every key lives in one dataclass below; ``config.example.toml`` documents the same keys and a test
keeps the two in step. Secrets are kept in :class:`Secret` so that printing a config never shows them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "BANGDAI_"


class ConfigError(ValueError):
    """A config file or variable that cannot be used; the message names the key."""


class Secret(str):
    """A string that never shows itself in ``repr``, logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:  # f-strings and logging go through __str__/__format__
        return "***" if self else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


@dataclass
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///bangdai.db"
    echo: bool = False


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass
class LocalConfig:
    enabled: bool = True
    token: Secret = Secret("")  # when set, the local API requires "Authorization: Bearer <token>"
    rate_per_minute: int = 600


@dataclass
class DingTalkConfig:
    enabled: bool = False
    client_id: str = ""
    client_secret: Secret = Secret("")
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"  # the older host of the media upload API (pictures)
    rate_per_second: float = 15.0
    monthly_api_quota: int = 10000  # staff are warned at 80 %
    groups: dict[str, str] = field(default_factory=dict)  # group name -> openConversationId
    reconnect_base_seconds: float = 1.0  # stream reconnect delay doubles from this, with jitter
    reconnect_max_seconds: float = 60.0
    http_timeout_seconds: float = 10.0  # every OpenAPI and sessionWebhook call


@dataclass
class WeComConfig:
    enabled: bool = False
    corp_id: str = ""
    agent_id: str = ""
    secret: Secret = Secret("")
    token: Secret = Secret("")
    encoding_aes_key: Secret = Secret("")
    api_base: str = "https://qyapi.weixin.qq.com"
    callback_path: str = "/wecom/callback"
    per_member_per_minute: int = 25
    per_member_per_hour: int = 900
    webhook_per_minute: int = 18
    markdown: bool = True
    cards: bool = True  # template cards with buttons; false for 政务微信 deployments without them
    rate_per_second: float = 10.0
    webhooks: dict[str, Secret] = field(default_factory=dict, metadata={"secret_values": True})


@dataclass
class ScheduleConfig:
    """Cron expressions (minute hour day month day_of_week), time zone Asia/Shanghai."""

    enabled: bool = True
    timezone: str = "Asia/Shanghai"
    leader_retry_seconds: float = 10.0  # how often a standby process tries to take over the scheduler
    weekly_reminder: str = "0 16 * * thu"
    weekly_digest: str = "0 9 * * mon"
    monthly_visit_prompt: str = "first-working-day 09:00"
    mailbox_overdue: str = "0 9 * * *"
    quarterly_summary: str = "first-working-day-of-quarter 09:00"
    review_report_request: str = "first-working-day-of-quarter 08:30"
    class_reminder: str = "0 10 * * *"
    monthly_ranking: str = "last-working-day 17:00"
    purge_processed_messages: str = "30 3 * * *"
    case_overdue: str = "5 9 * * *"
    purge_case_files: str = "45 3 * * *"


@dataclass
class OutboxConfig:
    dispatch: bool = True  # false: this process answers chat but leaves delivery to others
    channel_order: list[str] = field(default_factory=lambda: ["dingtalk", "wecom", "local"])
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    poll_seconds: float = 1.0


@dataclass
class ProgrammeConfig:
    principles_file: str = str(REPO_ROOT / "data" / "principles.example.toml")
    guides_dir: str = str(REPO_ROOT / "data" / "guides")
    templates_dir: str = str(REPO_ROOT / "templates")
    max_text_chars: int = 2000
    bind_max_failures: int = 5
    bind_lock_minutes: int = 60
    log_max_days_back: int = 30
    processed_message_days: int = 30  # how long a handled message's record (with its replies) is kept
    review_grace_working_days: int = 15  # a past quarter's 季评 can be given this long after it ends
    bundle_min_months: int = 3  # 捆绑考核 counts a mentee the mentor mentored this long in the year
    lapsed_weeks: int = 2  # a 帮带 this many whole weeks without 面谈 is listed as lapsed
    duplicate_contact_minutes: int = 10  # the same contact sent again within this is recorded once
    county: str = "本县"  # the county's name, on pictures such as the monthly ranking
    certificate_dir: str = "certificates"  # where 优秀导师 certificate PDFs are written (relative: to the config file)
    certificate_font: str = "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"  # Debian fonts-noto-cjk


@dataclass
class ChangqingConfig:
    """常青藤: the groups its broadcasts and monthly ranking go to, as "channel:group name" — the name
    as configured under [dingtalk] groups or [wecom] webhooks."""

    groups: list[str] = field(default_factory=list)

    def targets(self) -> list[tuple[str, str]]:
        out = []
        for entry in self.groups:
            channel, sep, name = str(entry).partition(":")
            if not sep or channel.strip() not in ("dingtalk", "wecom") or not name.strip():
                raise ConfigError(f'[changqing] groups 的“{entry}”应写成 "dingtalk:群名" 或 "wecom:群名"')
            out.append((channel.strip(), name.strip()))
        return out


@dataclass
class ConsoleConfig:
    """The staff web console (``/console/``), opened by a one-time link sent in the chat (``后台``)."""

    enabled: bool = True
    # The address people open the console at, named in the link (https://bangdai.example.gov.cn). While
    # empty the console answers only when the server listens on localhost, at http://host:port.
    base_url: str = ""
    link_minutes: int = 10  # a login link works once, within this many minutes
    session_hours: float = 9.0  # a working day
    idle_minutes: int = 60  # a session unused this long ends


@dataclass
class CalendarConfig:
    """Days from the State Council's yearly notice for years chinese-calendar does not know yet
    (``bot.calendar``): ``holidays`` off, ``workdays`` make-up working days (调休)."""

    holidays: list[Any] = field(default_factory=list)  # dates: 2027-01-01 or "2027-01-01"
    workdays: list[Any] = field(default_factory=list)


@dataclass
class SanlingConfig:
    """三零 零跑腿: where the files sent for 预审 cases are kept, how big they may be, how long they stay,
    and who records each department's part of a 调任联办单 when it has no 三联 contact."""

    files_dir: str = str(REPO_ROOT / "data" / "case_files")
    max_file_mb: float = 20.0
    retention_days: int = 365  # files and the case are removed this long after the decision
    department_staff: dict = field(default_factory=dict)  # "县人社局" = ["周敏"]


@dataclass
class ImportsConfig:
    """Limits on a spreadsheet before a row of it is read: a small .xlsx can declare a million rows or
    unpack to gigabytes (``handlers.sheets.reader``)."""

    max_rows: int = 100_000
    max_columns: int = 50
    max_unpacked_mb: float = 50.0
    empty_run: int = 1000  # this many empty rows in a row end the data


@dataclass
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    dingtalk: DingTalkConfig = field(default_factory=DingTalkConfig)
    wecom: WeComConfig = field(default_factory=WeComConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    programme: ProgrammeConfig = field(default_factory=ProgrammeConfig)
    changqing: ChangqingConfig = field(default_factory=ChangqingConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    sanling: SanlingConfig = field(default_factory=SanlingConfig)
    imports: ImportsConfig = field(default_factory=ImportsConfig)


def enabled_channels(config: Config) -> list[str]:
    """The channels switched on, in a fixed order."""
    flags = {"local": config.local.enabled, "dingtalk": config.dingtalk.enabled, "wecom": config.wecom.enabled}
    return [name for name, on in flags.items() if on]


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, str) and isinstance(value, int) and not isinstance(value, bool):
        # Ids a console shows as numbers (WeCom's AgentId 1000002) are written as numbers.
        value = str(value)
    if isinstance(default, Secret):
        if not isinstance(value, str):
            raise ConfigError(f"{where} 应为字符串")
        return Secret(value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{where} 应为 true/false，而不是 {value!r}")
    if isinstance(default, (int, float)):
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} 应为数字，而不是 {value!r}") from None
    if isinstance(default, (list, dict)):
        if isinstance(value, str):  # from the environment: JSON or a comma list
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                if isinstance(default, dict):
                    raise ConfigError(f"{where} 应为 JSON 对象") from None
                value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, type(default)):
            raise ConfigError(f"{where} 类型不对")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where} 应为字符串")
    return value


def _apply(section_obj: Any, values: Mapping[str, Any], section: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(section_obj)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"未知配置项 [{section}] {key}")
        value = _coerce(value, getattr(section_obj, key), f"[{section}] {key}")
        if fields[key].metadata.get("secret_values"):
            value = {k: Secret(str(v)) for k, v in value.items()}
        setattr(section_obj, key, value)


def sqlite_url_from(url: str, folder: Path) -> str:
    """A relative SQLite file in a config file is that file's neighbour, wherever the command runs from
    (``bangdai do`` in another directory must not open — or create — another database)."""
    prefix, sep, path = url.partition(":///")
    if not prefix.startswith("sqlite") or not sep or not path or path.startswith("/") or path.startswith(":memory:"):
        return url
    return f"{prefix}:///{folder / path}"


def _resolve_paths(config: Config) -> None:
    """Relative programme paths are read from the repository root (where data/ and templates/ live)."""
    for name in ("principles_file", "guides_dir", "templates_dir"):
        value = Path(getattr(config.programme, name))
        if not value.is_absolute():
            setattr(config.programme, name, str(REPO_ROOT / value))
    files = Path(config.sanling.files_dir)
    if not files.is_absolute():
        config.sanling.files_dir = str(REPO_ROOT / files)


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the config: defaults, then the file (``path`` or ``$BANGDAI_CONFIG``), then the environment."""
    environ = os.environ if environ is None else environ
    config = Config()
    path = path or environ.get("BANGDAI_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"找不到配置文件 {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"配置文件 {path} 格式错误：{exc}") from None
        for section, values in data.items():
            if not hasattr(config, section) or not isinstance(values, dict):
                raise ConfigError(f"未知配置节 [{section}]")
            _apply(getattr(config, section), values, section)
        folder = Path(path).resolve().parent
        config.database.url = sqlite_url_from(config.database.url, folder)
        config.programme.certificate_dir = str(folder / config.programme.certificate_dir)  # an absolute one stays
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if not hasattr(config, section):
            raise ConfigError(f"环境变量 {name}：未知配置节 [{section}]")
        _apply(getattr(config, section), {key: value}, section)
    _resolve_paths(config)
    _check_changqing_groups(config)
    _check_calendar(config)
    return config


def _check_calendar(config: Config) -> None:
    from .calendar import WorkCalendar  # the one reader of these dates checks them

    try:
        WorkCalendar(config.calendar.holidays, config.calendar.workdays)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_changqing_groups(config: Config) -> None:
    """A 常青藤 group must be one the channel knows how to reach, or its messages could never go out."""
    known = {"dingtalk": config.dingtalk.groups, "wecom": config.wecom.webhooks}
    for channel, name in config.changqing.targets():
        if name not in known[channel]:
            section = "[dingtalk] groups" if channel == "dingtalk" else "[wecom] webhooks"
            raise ConfigError(f"[changqing] groups 的“{channel}:{name}”不在 {section} 中")
