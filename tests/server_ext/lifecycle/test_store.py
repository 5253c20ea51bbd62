"""The deployment store survives a damaged file: set aside for inspection, never fatal."""

from __future__ import annotations

import json

import pytest

from kz_jupyter.server_ext.lifecycle.records import Deployment
from kz_jupyter.server_ext.lifecycle.store import DeploymentStore
from tests.support.rest_calls import json_of

GARBAGE = b"this is not SQLite \x00\xff" * 100


def test_a_damaged_store_is_set_aside_and_a_new_one_works(tmp_path):
    path = tmp_path / "deployments.sqlite"
    path.write_bytes(GARBAGE)
    store = DeploymentStore(path)
    assert store.set_aside is not None and store.set_aside.read_bytes() == GARBAGE
    assert store.load() == []
    store.save(Deployment(name="kept", model="smollm2"))
    store.close()
    reopened = DeploymentStore(path)
    assert reopened.set_aside is None and [d.name for d in reopened.load()] == ["kept"]
    reopened.delete("kept")
    assert reopened.load() == []


@pytest.fixture
def jp_server_config(tmp_path):
    """The extension, its state folder holding a damaged store before the server starts."""
    state = tmp_path / "kz-state"
    state.mkdir()
    (state / "deployments.sqlite").write_bytes(GARBAGE)
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(state)},
    }


async def test_the_server_starts_and_serves_despite_a_damaged_store(jp_fetch, tmp_path):
    assert json_of(await jp_fetch("kz/api/deployments")) == []
    kept = list((tmp_path / "kz-state").glob("deployments.sqlite.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == GARBAGE
    assert json.loads((await jp_fetch("kz/v1/models")).body)["data"] == []
