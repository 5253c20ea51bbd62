"""`%kz plan/deploy`'s flags, made from the one deploy schema (kz_jupyter.deploy_options):
the argparse arguments, their help lines, and the request body from parsed arguments, checked
before it is sent, with errors that name the flag as the user typed it."""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable
from typing import Annotated, Union, get_args, get_origin

from kz_jupyter.deploy_options import (
    DeployOptionError,
    Option,
    deploy_fields,
    option_type,
    validate_options,
)
from kz_jupyter.errors import KzError

HELP_COLUMN = 36


class FlagError(KzError):
    """A flag whose value does not parse; the message says the form it takes."""


def _unwrap(annotation: object) -> object:
    """The plain type behind Annotated[...] and `X | None`."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = _unwrap(next(a for a in get_args(annotation) if a is not type(None)))
    return annotation


def _converter(annotation: object) -> Callable[[str], object]:
    """How a flag's text becomes the option's value (int, float or text)."""
    plain = _unwrap(annotation)
    return plain if plain in (int, float) else str


def _field_type(name: str) -> object:
    """The type of a deploy option, without its None."""
    return _unwrap(option_type(name))


def add_deploy_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add `%kz <command>`'s flags (plan or deploy) to its parser."""
    for name, option in deploy_fields(command).items():
        plain = _field_type(name)
        if plain is bool:
            parser.add_argument(option.flag, dest=name, action="store_true", default=None)
        elif option.repeat:
            parser.add_argument(option.flag, dest=name, action="append", metavar=option.metavar)
        else:
            kind = _converter(plain)
            parser.add_argument(option.flag, dest=name, type=kind, metavar=option.metavar)


def usage_lines(command: str = "deploy") -> list[str]:
    """One line per flag: the flag and its value, what it does (deploy only: said)."""
    lines = []
    for option in deploy_fields(command).values():
        typed = f"{option.flag} {option.metavar}" if option.metavar else option.flag
        repeat = " (repeat)" if option.repeat else ""
        only = " (deploy only)" if option.deploy_only else ""
        lines.append(f"    {typed:<{HELP_COLUMN - 4}}{option.help}{repeat}{only}")
    return lines


def _pairs(pairs: list[str], option: Option, value_type: object) -> dict:
    """Repeated NAME=VALUE flags as a mapping; a malformed one is a FlagError showing the form."""
    convert = _converter(value_type)
    parsed = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        value = value or option.pair_default
        try:
            if not key or not value:
                raise ValueError(pair)
            parsed[key] = convert(value)
        except ValueError:
            raise FlagError(f"{option.flag} takes {option.metavar}, not {pair!r}") from None
    return parsed


def flag_options(model: str, args: argparse.Namespace, command: str) -> dict:
    """The options of `%kz <command> MODEL [flags]` as the REST API takes them, checked against
    the deploy schema; FlagError naming the flag when a value is not valid."""
    body: dict = {"model": model}
    for name, option in deploy_fields(command).items():
        value = getattr(args, name, None)
        if value is None:
            continue
        plain = _field_type(name)
        if option.repeat and get_origin(plain) is dict:
            value = _pairs(value, option, get_args(plain)[1])
        body[name] = value
    try:
        validate_options(body, flags=True)
    except DeployOptionError as error:
        raise FlagError(str(error)) from None
    del body["model"]
    return body
