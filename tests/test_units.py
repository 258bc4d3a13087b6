"""Rendering templates: placeholders filled, escaped per format, and what is refused."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest
from mam_install._errors import IntegrityError, PlatformError
from mam_install.scopes._units import UnsafeValue, format_of, leftover_placeholders, render

PAYLOAD = Path(__file__).resolve().parent.parent / "payload" / "host"

VALUES = {
    "MAM_TOOLS_DIR": "/home/ann/.local/share/mam/bin",
    "MAM_PYTHON": "/usr/bin/python3",
    "MAM_TMUX": "/usr/bin/tmux",
    "MAM_TMUX_SOCKET": "mam",
    "MAM_STATE_DIR": "/home/ann/.local/state/mam",
    "MAM_CONFIG_DIR": "/home/ann/.config/mam",
    "MAM_HOME": "/home/ann",
    "MAM_LOG_DIR": "/home/ann/.local/state/mam/log",
    "MAM_MQTT_PORT": "8883",
}


def test_every_placeholder_is_replaced_from_the_mapping() -> None:
    template = b"ExecStart=@MAM_TOOLS_DIR@/x.sh -L @MAM_TMUX_SOCKET@\n"
    out = render(template, VALUES, origin="a.service")
    assert out == b"ExecStart=/home/ann/.local/share/mam/bin/x.sh -L mam\n"


def test_a_value_holding_a_placeholder_is_not_expanded_again() -> None:
    values = {"MAM_HOME": "/h/@MAM_TMUX@", "MAM_TMUX": "/usr/bin/tmux"}
    out = render(b"@MAM_HOME@ @MAM_TMUX@", values, origin="x.conf", keep=frozenset({"MAM_TMUX"}))
    assert out == b"/h/@MAM_TMUX@ /usr/bin/tmux"


def test_a_leftover_mam_placeholder_is_an_integrity_error_naming_the_file() -> None:
    with pytest.raises(IntegrityError) as info:
        render(b"Environment=A=@MAM_NEW_THING@\n", VALUES, origin="units/systemd/a.service")
    assert "units/systemd/a.service" in str(info.value)
    assert "@MAM_NEW_THING@" in str(info.value)


def test_a_kept_per_instance_placeholder_survives_and_is_reported() -> None:
    out = render(b"<string>org.mam.agent.@MAM_AGENT_NAME@</string>", VALUES, origin="a.plist",
                 keep=frozenset({"MAM_AGENT_NAME"}))
    assert out == b"<string>org.mam.agent.@MAM_AGENT_NAME@</string>"
    assert leftover_placeholders(out) == ["MAM_AGENT_NAME"]


def test_at_words_that_are_not_mam_placeholders_are_left_alone() -> None:
    text = b"mail root@localhost; token @SOMETHING@ stays\n"
    assert render(text, VALUES, origin="x.conf") == text


def test_plist_values_are_xml_escaped_and_the_plist_still_parses() -> None:
    template = (PAYLOAD / "units/launchd/org.mam.tmux-holder.plist").read_bytes()
    values = dict(VALUES, MAM_TOOLS_DIR="/Users/a&b/<mam> \"x\" 'y'/bin")
    data = plistlib.loads(render(template, values, origin="org.mam.tmux-holder.plist"))
    assert data["ProgramArguments"] == ["/Users/a&b/<mam> \"x\" 'y'/bin/mam-tmux-holder.sh"]


def test_systemd_values_have_percent_doubled_so_no_specifier_is_expanded() -> None:
    out = render(b"Environment=MAM_HOME=@MAM_HOME@\n", {"MAM_HOME": "/home/100%"},
                 origin="x.service")
    assert out == b"Environment=MAM_HOME=/home/100%%\n"


@pytest.mark.parametrize("value", ["/home/ann smith", "/home/a\"b", "/home/a\\b", "/home/$USER",
                                   "/home/a'b", "/home/a\tb"])
def test_systemd_values_that_would_split_a_command_line_are_refused(value: str) -> None:
    with pytest.raises(UnsafeValue) as info:
        render(b"ExecStart=@MAM_TOOLS_DIR@/x.sh\n", {"MAM_TOOLS_DIR": value}, origin="x.service")
    assert isinstance(info.value, PlatformError)
    assert "x.service" in str(info.value) and "@MAM_TOOLS_DIR@" in str(info.value)


@pytest.mark.parametrize("origin", ["x.service", "x.plist", "x.conf"])
def test_a_value_with_a_line_break_is_refused_in_every_format(origin: str) -> None:
    with pytest.raises(UnsafeValue):
        render(b"a=@MAM_HOME@\n", {"MAM_HOME": "/h\nExecStartPre=/bin/evil"}, origin=origin)


def test_text_values_are_written_as_they_are() -> None:
    out = render(b"persistence_location @MAM_STATE_DIR@/broker/\n",
                 {"MAM_STATE_DIR": "/home/ann smith/state"}, origin="mosquitto.conf")
    assert out == b"persistence_location /home/ann smith/state/broker/\n"


def test_the_format_follows_the_file_name() -> None:
    assert format_of("units/systemd/mam-agent@.service") == "systemd"
    assert format_of("org.mam.agent.plist") == "plist"
    assert format_of("mosquitto/mam-broker.conf") == "text"


def test_every_shipped_template_renders_with_the_installer_values() -> None:
    templates = sorted(p for p in PAYLOAD.rglob("*") if p.is_file() and "tools" not in p.parts)
    assert templates, "payload/host holds no templates"
    for path in templates:
        out = render(path.read_bytes(), VALUES, origin=str(path.relative_to(PAYLOAD)),
                     keep=frozenset({"MAM_AGENT_NAME"}))
        assert set(leftover_placeholders(out)) <= {"MAM_AGENT_NAME"}, path
        if path.suffix == ".plist":
            plistlib.loads(out.replace(b"@MAM_AGENT_NAME@", b"alice"))
