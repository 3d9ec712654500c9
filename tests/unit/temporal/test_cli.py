"""``campaign-express worker`` refuses to start without a cluster to join."""

from __future__ import annotations

from click.testing import CliRunner

from workers.cli import cli


def test_worker_without_a_temporal_address_fails_with_what_to_set() -> None:
    result = CliRunner().invoke(cli, ["worker"])

    assert result.exit_code == 1
    assert "set CE_TEMPORAL_ADDRESS" in result.output
    assert "campaign-express up" in result.output
