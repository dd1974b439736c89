"""Load the YAML config: keep line numbers, resolve ``${ENV}`` secrets, report all errors."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from daemon.settings import Settings, semantic_problems
from domain.errors import ConfigError, ConfigProblem

DEFAULT_CONFIG_PATH = Path("config/repricerd.yaml")
ENV_CONFIG = "REPRICERD_CONFIG"
ENV_DATABASE = "REPRICERD_DATABASE"
ENV_HOST = "REPRICERD_HOST"  # containers listen on 0.0.0.0 without editing the mounted YAML
# An empty or trivial secret would let anyone sign webhooks (HMAC with a known key).
MIN_SECRET_LENGTH = 8
# What an unset ${ENV} reference becomes with load_config(resolve_secrets=False).
UNRESOLVED = "https://unresolved.invalid/"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, with where it came from and a digest to detect changes."""

    settings: Settings
    path: Path
    digest: str
    # Resolved secret values, for the log redaction processor; never part of a repr.
    secrets: tuple[str, ...] = field(repr=False)
    # The 1-based line of each ``pricing.rules`` entry in ``path`` (the console's config view).
    rule_lines: tuple[int | None, ...] = ()


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The config file to use: ``-c``, else ``$REPRICERD_CONFIG``, else config/repricerd.yaml."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG_PATH)


# Secrets a command that never calls a marketplace does not need (see ``resolve_secrets``).
_UNNEEDED_SECRETS: tuple[Loc, ...] = (
    ("channels",),
    ("server", "sync_token"),
    ("server", "console_password"),
    ("alerts", "webhook_url"),
)


def load_config(
    path: Path, environ: Mapping[str, str] | None = None, *, resolve_secrets: bool = True
) -> LoadedConfig:
    """Parse and validate ``path``; raise ``ConfigError`` listing every problem found.

    ``resolve_secrets=False`` is for commands that only read the database (``history``,
    ``explain``, ``simulate``, ``status``): a channel secret (or ``server.sync_token``,
    ``alerts.webhook_url``) whose environment variable is not set becomes the placeholder
    ``UNRESOLVED`` (it passes the secret and URL checks) instead of being an error. Such a config
    must never open a channel. The database URL is always resolved.
    """
    environ = os.environ if environ is None else environ
    name = str(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"{name}: cannot read: {err.strerror}",
            [ConfigProblem(name, None, "", f"cannot read: {err.strerror}")],
        ) from err
    try:
        tree = YAML(typ="rt").load(raw_bytes)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        problem = ConfigProblem(name, line, "", f"YAML syntax: {err.problem or err.context}")
        raise ConfigError(str(problem), [problem]) from err
    except YAMLError as err:  # e.g. invalid UTF-8 or a control character (ReaderError)
        problem = ConfigProblem(name, None, "", f"not a readable YAML file: {err}")
        raise ConfigError(str(problem), [problem]) from err
    if not isinstance(tree, CommentedMap):
        problem = ConfigProblem(name, 1, "", "the file must be a YAML mapping of top-level keys")
        raise ConfigError(str(problem), [problem])

    resolver = _Resolver(name, environ, tree, () if resolve_secrets else _UNNEEDED_SECRETS)
    data = resolver.plain(tree, ())
    problems = list(resolver.problems)
    if environ.get(ENV_DATABASE):
        data["database"] = environ[ENV_DATABASE]
    if environ.get(ENV_HOST):
        server = data.get("server")
        data["server"] = {**(server if isinstance(server, dict) else {}), "host": environ[ENV_HOST]}

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        for item in err.errors(include_url=False):
            loc = _yaml_loc(tree, item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "unknown key"
            elif item["type"] == "missing":
                message = "required key is missing"
            problems.append(_problem(name, tree, loc, message))
    if settings is not None:
        for loc, message in semantic_problems(settings):
            problems.append(_problem(name, tree, loc, message))
        for loc, secret in _secrets(settings, ()):
            if loc in resolver.unresolved:
                continue
            if loc in resolver.env_locs and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
                problems.append(
                    _problem(
                        name,
                        tree,
                        loc,
                        f"the secret is empty or shorter than {MIN_SECRET_LENGTH} characters",
                    )
                )
        for loc, _secret in _secrets(settings, ()):
            if loc not in resolver.env_locs:
                problems.append(
                    _problem(
                        name,
                        tree,
                        loc,
                        "secrets must be ${ENV_VAR} references, never literal values",
                    )
                )
    # Missing env vars also surface as type errors on the same key; report the cause once.
    problems = _dedupe(problems)
    if problems or settings is None:
        raise ConfigError("\n".join(str(p) for p in problems), problems)
    return LoadedConfig(
        settings=settings,
        path=path,
        digest=hashlib.sha256(raw_bytes).hexdigest(),
        secrets=tuple(v for v in resolver.secret_values if v),
        rule_lines=tuple(
            _line_of(tree, ("pricing", "rules", index))
            for index in range(len(settings.pricing.rules))
        ),
    )


class _Resolver:
    """Turn the ruamel tree into plain data, substituting ``${VAR}`` references."""

    def __init__(
        self,
        file: str,
        environ: Mapping[str, str],
        tree: CommentedMap,
        optional: tuple[Loc, ...] = (),
    ) -> None:
        self.file = file
        self.environ = environ
        self.tree = tree
        # Locations under these prefixes may name unset variables: left as ``${VAR}``.
        self.optional = optional
        self.problems: list[ConfigProblem] = []
        self.env_locs: set[Loc] = set()
        self.unresolved: set[Loc] = set()
        self.secret_values: list[str] = []

    def plain(self, node: Any, loc: Loc) -> Any:
        if isinstance(node, CommentedMap):
            return {str(k): self.plain(v, (*loc, str(k))) for k, v in node.items()}
        if isinstance(node, CommentedSeq):
            return [self.plain(v, (*loc, i)) for i, v in enumerate(node)]
        if isinstance(node, float):
            # YAML floats become exact decimals from their shortest repr (0.1 stays 0.1).
            return Decimal(repr(float(node)))
        if isinstance(node, str):
            return self._substitute(str(node), loc)
        return node

    def _substitute(self, text: str, loc: Loc) -> str | None:
        refs = _ENV_REF.findall(text)
        if not refs:
            return text
        missing = [ref for ref in refs if ref not in self.environ]
        if missing and any(loc[: len(prefix)] == prefix for prefix in self.optional):
            # A placeholder that passes the secret and URL checks; nothing will ever send it.
            self.env_locs.add(loc)
            self.unresolved.add(loc)
            return _ENV_REF.sub(lambda m: self.environ.get(m.group(1), UNRESOLVED), text)
        if missing:
            for ref in missing:
                self.problems.append(
                    _problem(self.file, self.tree, loc, f"environment variable {ref} is not set")
                )
            return None
        self.env_locs.add(loc)
        for ref in refs:
            self.secret_values.append(self.environ[ref])
        return _ENV_REF.sub(lambda m: self.environ[m.group(1)], text)


def _yaml_loc(tree: Any, loc: Iterable[str | int]) -> Loc:
    """Map a pydantic error location onto the YAML tree, dropping union tags it inserts."""
    out: list[str | int] = []
    node = tree
    for part in loc:
        if isinstance(node, CommentedMap) and str(part) in node:
            node = node[str(part)]
            out.append(str(part))
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            node = node[part]
            out.append(part)
        elif isinstance(node, CommentedMap) and part in (node.get("strategy"), node.get("kind")):
            continue  # a tagged-union tag (the value of ``strategy:`` or ``kind:``), not a key
        elif isinstance(node, CommentedMap | CommentedSeq) and isinstance(part, str):
            if not any(c in part for c in "[]()"):  # skip validator labels like function-after[...]
                out.append(part)  # a missing key: name it; its line is its parent's
                node = None
        else:
            out.append(part)
    return tuple(out)


def _line_of(tree: Any, loc: Loc) -> int | None:
    """1-based line of the deepest node of ``loc`` present in the tree."""
    node = tree
    line: int | None = 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            pos = node.lc.key(part)  # None for a key that came in through a YAML merge (<<:)
            line = pos[0] + 1 if pos else line
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            pos = node.lc.item(part)
            line = pos[0] + 1 if pos else line
            node = node[part]
        else:
            break
    return line


def _problem(file: str, tree: Any, loc: Loc, message: str) -> ConfigProblem:
    key = ".".join(f"[{p}]" if isinstance(p, int) else p for p in loc).replace(".[", "[")
    return ConfigProblem(file, _line_of(tree, loc), key, message)


def _secrets(model: Any, loc: Loc) -> Iterable[tuple[Loc, SecretStr]]:
    """Every SecretStr in the validated settings, with its location."""
    if isinstance(model, SecretStr):
        yield loc, model
    elif hasattr(model, "__pydantic_fields_set__"):
        for field_name in model.__pydantic_fields_set__:
            yield from _secrets(getattr(model, field_name), (*loc, field_name))
    elif isinstance(model, dict):
        for key, value in model.items():
            yield from _secrets(value, (*loc, str(key)))
    elif isinstance(model, list | tuple):
        for index, value in enumerate(model):
            yield from _secrets(value, (*loc, index))


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    env_keys = {p.key for p in problems if p.message.startswith("environment variable")}
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        if p.key in env_keys and not p.message.startswith("environment variable"):
            continue
        ident = (p.line, p.key, p.message)
        if ident not in seen:
            seen.add(ident)
            out.append(p)
    return sorted(out, key=lambda p: (p.line or 0, p.key))
