from __future__ import annotations

import io
import json

import structlog

from trader.infra.logging import REDACTED, configure_logging


def _log_line(**fields: object) -> dict[str, object]:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    structlog.get_logger().info("event_name", **fields)
    structlog.reset_defaults()
    line: dict[str, object] = json.loads(out.getvalue())
    return line


def test_json_lines_carry_event_level_and_timestamp() -> None:
    line = _log_line(token_id="123", price="0.51")
    assert line["event"] == "event_name"
    assert line["level"] == "info"
    assert line["token_id"] == "123"
    assert line["price"] == "0.51"
    assert str(line["timestamp"]).endswith("Z")


def test_secret_fields_are_redacted_even_if_passed_by_mistake() -> None:
    key = "0x" + "ab" * 32
    line = _log_line(api_secret="s3cret", passphrase="p", private_key=key, admin_token="t", signing_key=key)
    assert line["api_secret"] == REDACTED
    assert line["passphrase"] == REDACTED
    assert line["private_key"] == REDACTED
    assert line["admin_token"] == REDACTED
    assert line["signing_key"] == REDACTED
    assert "s3cret" not in json.dumps(line)


def test_debug_is_filtered_at_info_level() -> None:
    out = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=out)
    structlog.get_logger().debug("hidden")
    structlog.reset_defaults()
    assert out.getvalue() == ""
