"""The deploy options live in one place: an option added to the schema shows in `%kz help`,
parses as a flag, is validated by the REST API with its bounds, and is described in OpenAPI
and the sidebar's TypeScript type, all at once."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, create_model

from kz_jupyter import deploy_options
from kz_jupyter.deploy_options import DeployOptionError, Option, validate_options
from kz_jupyter.magics.deploy_flags import FlagError, flag_options
from kz_jupyter.magics.kz_magics import build_parser, usage
from kz_jupyter.server_ext.api.openapi import openapi
from kz_jupyter.server_ext.api.typescript_types import TS_FILE, deploy_request_module
from tests.support.paths import ROOT
from tests.support.rest_calls import error_of

DUMMY = Option("an integer from 1 to 3", "--dummy-level", "L", "how dummy it is")


@pytest.fixture
def dummy_option(monkeypatch):
    """The deploy schema with one more option, dummy_level (1 to 3, flag --dummy-level)."""
    extended = create_model(
        "DeployOptions",
        __base__=deploy_options.DeployOptions,
        dummy_level=(Annotated[int | None, Field(ge=1, le=3), DUMMY], None),
    )
    monkeypatch.setattr(deploy_options, "DeployOptions", extended)


def test_the_committed_typescript_type_is_the_schema_s():
    assert (ROOT / TS_FILE).read_text() == deploy_request_module()


def test_an_added_option_reaches_the_magic_the_api_description_and_the_types(dummy_option):
    assert "--dummy-level L" in usage() and "how dummy it is" in usage()
    args = build_parser().parse_args(["deploy", "smollm2", "--dummy-level", "2"])
    assert flag_options("smollm2", args, "deploy")["dummy_level"] == 2
    args = build_parser().parse_args(["plan", "smollm2", "--dummy-level", "9"])
    with pytest.raises(FlagError, match="^--dummy-level must be an integer from 1 to 3.$"):
        flag_options("smollm2", args, "plan")
    body = openapi()["paths"]["/kz/api/deployments"]["post"]["requestBody"]
    described = body["content"]["application/json"]["schema"]["properties"]["dummy_level"]
    assert described["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 3}
    assert "  dummy_level?: number | null;" in deploy_request_module()
    assert validate_options({"model": "smollm2", "dummy_level": 3}).dummy_level == 3


def test_without_it_the_option_is_unknown_everywhere():
    assert "--dummy-level" not in usage()
    with pytest.raises(SystemExit.__base__):  # argparse: unrecognized arguments (UsageError)
        build_parser().parse_args(["deploy", "smollm2", "--dummy-level", "2"])
    assert "dummy_level" not in deploy_request_module()


async def test_the_rest_api_validates_an_added_option_with_its_bounds(dummy_option, jp_fetch):
    body = '{"model": "smollm2", "dummy_level": 9}'
    status, error = await error_of(jp_fetch, "kz/api/deployments", method="POST", body=body)
    assert (status, error["message"]) == (400, "'dummy_level' must be an integer from 1 to 3.")


def test_errors_name_the_option_as_the_user_wrote_it():
    body = {"model": "smollm2", "context_length": 10}
    with pytest.raises(DeployOptionError, match="^'context_length' must be an integer from 64"):
        validate_options(body)
    with pytest.raises(DeployOptionError, match="^--context must be an integer from 64"):
        validate_options(body, flags=True)
