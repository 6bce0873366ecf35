"""Configuration: defaults, the file, the environment, and secrets kept out of sight."""

import dataclasses
import logging
import tomllib

import pytest

from bot.config import REPO_ROOT, Config, ConfigError, Secret, load_config


def test_defaults_without_any_file():
    config = load_config(None, environ={})
    assert config.database.url == "sqlite+aiosqlite:///bangdai.db"
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.local.enabled and not config.dingtalk.enabled and not config.wecom.enabled
    assert config.schedule.weekly_reminder == "0 16 * * thu"


def test_file_then_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\n[dingtalk]\nenabled = true\nclient_secret = "abc"\n'
                    '[dingtalk.groups]\n"常青藤一组" = "cid1"\n', encoding="utf-8")
    env = {"BANGDAI_SERVER__PORT": "9100", "BANGDAI_WECOM__WEBHOOKS": '{"一组": "key1"}',
           "BANGDAI_OUTBOX__CHANNEL_ORDER": "wecom,local", "OTHER": "x"}
    config = load_config(path, environ=env)
    assert config.server.port == 9100 and config.dingtalk.enabled
    assert config.dingtalk.client_secret.reveal() == "abc" and config.dingtalk.groups == {"常青藤一组": "cid1"}
    assert config.wecom.webhooks["一组"].reveal() == "key1"
    assert config.outbox.channel_order == ["wecom", "local"]
    assert load_config(None, environ={"BANGDAI_CONFIG": str(path)}).server.port == 9000


@pytest.mark.parametrize("content,env,message", [
    ("[nosuch]\na = 1\n", {}, "未知配置节"),
    ("[server]\nnosuch = 1\n", {}, "未知配置项 [server] nosuch"),
    ("[server]\nport = \"x\"\n", {}, "应为数字"),
    ("[local]\nenabled = \"maybe\"\n", {}, "true/false"),
    ("not toml ===", {}, "格式错误"),
    ("", {"BANGDAI_NOSUCH__X": "1"}, "未知配置节"),
])
def test_bad_config_names_the_key(tmp_path, content, env, message):
    path = tmp_path / "c.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path, environ=env)
    with pytest.raises(ConfigError, match="找不到配置文件"):
        load_config(tmp_path / "missing.toml", environ={})


def test_secrets_do_not_show(caplog):
    secret = Secret("topsecret")
    config = load_config(None, environ={"BANGDAI_DINGTALK__CLIENT_SECRET": "topsecret"})
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("config %s %r %s", config, config.dingtalk, secret)
    assert "topsecret" not in caplog.text and "topsecret" not in repr(config) and f"{secret}" == "***"
    assert secret.reveal() == "topsecret"


def test_example_file_documents_every_key_with_its_default():
    example = tomllib.loads((REPO_ROOT / "config.example.toml").read_text(encoding="utf-8"))
    defaults = Config()
    assert set(example) == {f.name for f in dataclasses.fields(defaults)}
    for section, values in example.items():
        obj = getattr(defaults, section)
        assert set(values) == {f.name for f in dataclasses.fields(obj)}, section
    loaded = load_config(REPO_ROOT / "config.example.toml", environ={})
    # The differences: its relative SQLite file and certificate folder are the config file's neighbours.
    assert loaded.database.url == f"sqlite+aiosqlite:///{REPO_ROOT}/bangdai.db"
    assert loaded.programme.certificate_dir == f"{REPO_ROOT}/certificates"
    loaded.database.url = Config().database.url
    loaded.programme.certificate_dir = Config().programme.certificate_dir
    assert loaded == load_config(None, environ={})


def test_a_relative_sqlite_file_is_beside_the_config_and_console_numbers_are_taken(tmp_path):
    path = tmp_path / "conf" / "c.toml"
    path.parent.mkdir()
    path.write_text('[database]\nurl = "sqlite+aiosqlite:///data/b.db"\n[wecom]\nagent_id = 1000002\n'
                    'corp_id = "ww1"\n', encoding="utf-8")
    config = load_config(path, environ={})
    assert config.database.url == f"sqlite+aiosqlite:///{tmp_path}/conf/data/b.db"
    assert config.programme.certificate_dir == f"{tmp_path}/conf/certificates"  # wherever the command runs
    assert config.wecom.agent_id == "1000002"
    env = {"BANGDAI_DATABASE__URL": "sqlite+aiosqlite:////srv/b.db"}
    assert load_config(path, environ=env).database.url == "sqlite+aiosqlite:////srv/b.db"
    path.write_text('[wecom]\nagent_id = true\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="agent_id 应为字符串"):
        load_config(path, environ={})
