"""What the components' settings share: each is a pydantic-settings model, read once at start.

A component declares its settings as one model (``collector/config.py``, ``collector/alerts/settings.py``,
``dashboard/config.py``, ``demo.py``): each field is one ``THREADLINE_*`` variable (its name, type,
default, bounds and meaning), read by pydantic-settings. ``read`` adds the command line's options on
top and turns a value that does not validate into one line naming the variable (or option), the value
and the reason, which the command prints instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

Settings = TypeVar("Settings", bound=BaseSettings)

# pydantic's reasons, in an operator's words (the others keep pydantic's own message).
_REASONS = {
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_type": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "finite_number": "expected a finite number",
    "bool_parsing": "expected on or off",
    "bool_type": "expected on or off",
    "greater_than": "expected more than {gt}",
    "greater_than_equal": "expected at least {ge}",
    "less_than": "expected less than {lt}",
    "less_than_equal": "expected at most {le}",
    "extra_forbidden": "not a setting",
}


def config(env_prefix: str) -> SettingsConfigDict:
    """A model's configuration: its variables' common prefix, and what every model shares: an empty
    variable is an unset one (as ``THREADLINE_CLUSTER=`` always was), a keyword that names no setting
    is a mistake rather than something to ignore, and settings never change once read."""
    return SettingsConfigDict(env_prefix=env_prefix, env_ignore_empty=True, extra="forbid", frozen=True)


class SettingsError(ValueError):
    """Settings a component cannot start with; the message is one line for the operator."""


def variables(model: type[BaseSettings]) -> Iterator[tuple[str, str]]:
    """(field, the variable it is read from) for each setting of ``model``."""
    prefix = model.model_config.get("env_prefix", "")
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        yield name, alias if isinstance(alias, str) else (prefix + name).upper()


def read(model: type[Settings], **options: Any) -> Settings:
    """``model`` from the environment, with the command line's ``options`` (None: not given) on top.

    Raises SettingsError naming every value that does not validate, as the operator wrote it:
    ``THREADLINE_PORT='abc': expected a whole number`` or ``--port=70000: expected at most 65535``.
    """
    keys = dict(variables(model))
    # Given under the key pydantic-settings validates a field by: its variable if it has an alias.
    given = {_key(model, name, keys): value for name, value in options.items() if value is not None}
    try:
        return model(**given)
    except ValidationError as error:
        raise SettingsError(
            "; ".join(_describe(problem, keys, given) for problem in error.errors())
        ) from None


def _key(model: type[BaseSettings], name: str, keys: dict[str, str]) -> str:
    if name not in keys:
        raise TypeError(f"{model.__name__} has no setting {name!r}")
    alias = model.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else name


def _describe(problem: ErrorDetails, keys: dict[str, str], given: dict[str, Any]) -> str:
    """``NAME='value': reason``, NAME the option when the value came from the command line."""
    key = str(problem["loc"][0]) if problem["loc"] else ""
    if key in given:
        field = next((name for name, variable in keys.items() if key in (name, variable)), key)
        name = "--" + field.replace("_", "-")
    else:  # a field without an alias fails under its own name, one with an alias under its variable
        name = keys.get(key, key)
    reason = _REASONS.get(problem["type"])
    if reason is not None:
        bounds = {bound: f"{limit:g}" for bound, limit in problem.get("ctx", {}).items()}  # 0, not 0.0
        reason = reason.format(**bounds)
    elif problem["type"] == "value_error":  # our own validators say why in their words
        reason = str(problem["ctx"]["error"])
    else:
        reason = problem["msg"]
    return f"{name}={problem['input']!r}: {reason}"


def http_url(value: str) -> str:
    """An http(s) URL with a host, without its trailing slash (paths are appended to it)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return value.strip().rstrip("/")


def comma_list(value: object) -> object:
    """``a, b,,c`` as ("a", "b", "c"): a list variable is comma-separated, blanks ignored."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value
