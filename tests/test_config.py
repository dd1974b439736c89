"""The YAML config: every problem with file, line and dotted key; secrets only via ${ENV}."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.cli import main
from daemon.config import DEFAULT_CONFIG_PATH, ENV_CONFIG, UNRESOLVED, config_path, load_config
from domain.errors import ConfigError, ConfigProblem
from strategies.base import parse_duration
from tests.daemon_fixtures import demo_env

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "config" / "repricerd.yaml"
UNSET_VAR = "REPRICERD_TEST_UNSET_HOOK"
CANARY = "canary-secret-123456"

# A minimal valid file; tests append to it or replace parts of it.
MINIMAL = """\
channels:
  shop:
    kind: mock
pricing:
  rules:
    - strategy: hold
"""

ACCEPTANCE = f"""\
database: sqlite:///var/test.db
server:
  host: 127.0.0.1
  portt: 8080
channels:
  shop:
    kind: mock
    webhook_secret: ${{{UNSET_VAR}}}
pricing:
  rules:
    - name: impossible
      strategy: fixed
      min_price: 20
      max_price: 10
      params: {{price: 15}}
"""


def write(tmp_path: Path, text: str, name: str = "repricerd.yaml") -> Path:
    """Write a config file (dedented) and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the n-th occurrence of ``needle``."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    """Load ``path`` expecting a ConfigError and return its problems."""
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={} if environ is None else environ)
    assert info.value.problems, "a ConfigError must list its problems"
    return info.value.problems


def by_key(problems: list[ConfigProblem]) -> dict[str, ConfigProblem]:
    """Index problems by dotted key (asserting keys are unique)."""
    index = {p.key: p for p in problems}
    assert len(index) == len(problems), problems
    return index


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure the process environment cannot satisfy or override the test configs."""
    for var in (UNSET_VAR, "REPRICERD_DATABASE", ENV_CONFIG):
        monkeypatch.delenv(var, raising=False)


# --- the acceptance case ---------------------------------------------------------------------


def test_acceptance_reports_unknown_key_missing_env_and_impossible_rule(tmp_path: Path) -> None:
    """An unknown key, a missing ${ENV} secret and min_price > max_price are all reported."""
    path = write(tmp_path, ACCEPTANCE)
    problems = by_key(problems_of(path))
    assert set(problems) == {
        "server.portt",
        "channels.shop.webhook_secret",
        "pricing.rules[0].max_price",
    }
    assert problems["server.portt"].line == line_of(path, "portt:")
    assert problems["server.portt"].message == "unknown key"
    hook = problems["channels.shop.webhook_secret"]
    assert hook.line == line_of(path, "webhook_secret:")
    assert hook.message == f"environment variable {UNSET_VAR} is not set"
    rule = problems["pricing.rules[0].max_price"]
    assert rule.line == line_of(path, "max_price:")
    assert "below min_price" in rule.message
    for problem in problems.values():
        assert problem.file == str(path)


@pytest.mark.usefixtures("clean_env")
def test_cli_check_prints_every_problem_with_file_and_line(tmp_path: Path) -> None:
    """`repricerd check` exits 1 and prints each problem as `error: file:line: key: message`."""
    path = write(tmp_path, ACCEPTANCE)
    result = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert result.exit_code == 1, result.output
    stderr = result.stderr
    for needle, key in [
        ("portt:", "server.portt"),
        ("webhook_secret:", "channels.shop.webhook_secret"),
        ("max_price:", "pricing.rules[0].max_price"),
    ]:
        assert f"error: {path}:{line_of(path, needle)}: {key}: " in stderr
    assert "3 problem(s)" in stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_check_subprocess_exits_1_on_invalid_config(tmp_path: Path) -> None:
    """The installed `repricerd check` command exits 1 on the acceptance config."""
    path = write(tmp_path, ACCEPTANCE)
    script = Path(sys.executable).with_name("repricerd")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "daemon"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (UNSET_VAR, "REPRICERD_DATABASE", ENV_CONFIG)
    }
    proc = subprocess.run(
        [*command, "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"{path}:{line_of(path, 'portt:')}: server.portt: unknown key" in proc.stderr


@pytest.mark.usefixtures("clean_env", "restore_logging")
def test_demo_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped demo config passes `repricerd check` with the demo credentials `make run`
    exports (exit 0, prints ok), and names every secret by reference only."""
    for name, value in demo_env().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["check", "-c", str(DEMO_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout
    loaded = load_config(DEMO_CONFIG, environ=demo_env())
    assert set(loaded.settings.channels) == {
        "amazon-demo",
        "shop-demo",
        "walmart-demo",
        "ebay-demo",
    }
    assert set(loaded.secrets) == set(demo_env().values())
    text = DEMO_CONFIG.read_text()
    assert not any(value in text for value in demo_env().values())


@pytest.mark.usefixtures("clean_env")
def test_cli_check_missing_file_exits_1(tmp_path: Path) -> None:
    """`repricerd check` on a file that does not exist exits 1 with `cannot read`."""
    path = tmp_path / "nope.yaml"
    result = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert result.exit_code == 1
    assert f"error: {path}: cannot read" in result.stderr


# --- secrets ---------------------------------------------------------------------------------


def test_literal_secrets_are_rejected(tmp_path: Path) -> None:
    """Every literal SecretStr value is a problem telling the user to use ${ENV_VAR}."""
    path = write(
        tmp_path,
        """\
        server:
          sync_token: literal-operator-token
        channels:
          shop:
            kind: mock
            webhook_secret: plaintext
        pricing:
          rules:
            - strategy: hold
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    problems = by_key(info.value.problems)
    assert set(problems) == {"server.sync_token", "channels.shop.webhook_secret"}
    assert problems["channels.shop.webhook_secret"].line == line_of(path, "webhook_secret:")
    assert problems["server.sync_token"].line == line_of(path, "sync_token:")
    for problem in problems.values():
        assert "${ENV_VAR}" in problem.message
    # The rejected literal itself is not echoed back.
    assert "plaintext" not in str(info.value)
    assert "literal-operator-token" not in str(info.value)


def test_secret_like_key_in_strategy_params_is_rejected(tmp_path: Path) -> None:
    """A secret-like key inside a strategy's params fails at load, without echoing its value."""
    path = write(
        tmp_path,
        """\
        channels:
          shop:
            kind: mock
        pricing:
          rules:
            - strategy: cost_plus
              params:
                margin_pct: 10
                api_key: sk-live-abcdef123456
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert [(p.key, p.line, p.message) for p in info.value.problems] == [
        ("pricing.rules[0].params.api_key", line_of(path, "api_key:"), "unknown key")
    ]
    assert "sk-live-abcdef123456" not in str(info.value)


SECRETS_YAML = """\
server:
  sync_token: ${SYNC_TOKEN}
channels:
  shop:
    kind: mock
    webhook_secret: ${SHOP_HOOK}
pricing:
  rules:
    - strategy: hold
"""


def test_env_secrets_are_resolved_and_never_rendered(tmp_path: Path) -> None:
    """${VAR} secrets resolve from environ, stay out of repr/str/JSON and land in `.secrets`."""
    path = write(tmp_path, SECRETS_YAML)
    token = "operator-token-987654"
    loaded = load_config(path, environ={"SHOP_HOOK": CANARY, "SYNC_TOKEN": token})
    settings = loaded.settings
    hook = settings.channels["shop"].webhook_secret
    assert hook is not None
    assert hook.get_secret_value() == CANARY
    assert settings.server.sync_token is not None
    assert settings.server.sync_token.get_secret_value() == token
    renderings = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(mode="json")),
        repr(settings.channels["shop"]),
    ]
    for text in renderings:
        assert CANARY not in text
        assert token not in text
    assert set(loaded.secrets) == {CANARY, token}


def test_loaded_config_repr_hides_secrets(tmp_path: Path) -> None:
    """repr() of the LoadedConfig the CLI and runtime pass around never shows a secret."""
    path = write(tmp_path, SECRETS_YAML)
    loaded = load_config(path, environ={"SHOP_HOOK": CANARY, "SYNC_TOKEN": "tok-987654"})
    assert CANARY not in repr(loaded)


def test_missing_env_var_for_required_value_is_reported_once(tmp_path: Path) -> None:
    """A missing ${VAR} in a required field is reported as the missing variable, not twice."""
    path = write(
        tmp_path,
        """\
        channels:
          shop:
            kind: mock
        pricing:
          rules:
            - strategy: fixed
              params: {price: "${FIXED_PRICE}"}
        """,
    )
    problems = problems_of(path)
    assert [(p.key, p.line, p.message) for p in problems] == [
        (
            "pricing.rules[0].params.price",
            line_of(path, "FIXED_PRICE"),
            "environment variable FIXED_PRICE is not set",
        )
    ]


def test_database_env_overrides_yaml(tmp_path: Path) -> None:
    """REPRICERD_DATABASE in the environment replaces the YAML `database`."""
    path = write(tmp_path, "database: sqlite:///var/from-yaml.db\n" + MINIMAL)
    url = "postgresql://repricer@db.internal/repricer"
    assert load_config(path, environ={}).settings.database == "sqlite:///var/from-yaml.db"
    loaded = load_config(path, environ={"REPRICERD_DATABASE": url})
    assert loaded.settings.database == url


# --- file-level errors -----------------------------------------------------------------------


def test_yaml_syntax_error_is_one_problem_with_a_line(tmp_path: Path) -> None:
    """A YAML syntax error becomes exactly one problem that carries a line number."""
    path = write(tmp_path, "server:\n  host: [127.0.0.1, 8080\nchannels: {}\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert isinstance(problems[0].line, int)
    assert problems[0].line >= 1
    assert problems[0].message.startswith("YAML syntax:")
    assert str(problems[0]).startswith(f"{path}:{problems[0].line}: ")


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    """A key given twice is an error on the second occurrence, not a silent last-wins."""
    path = write(tmp_path, "database: sqlite:///a.db\ndatabase: sqlite:///b.db\n" + MINIMAL)
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].line == 2
    assert "duplicate key" in problems[0].message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n", ""])
def test_non_mapping_file_is_rejected(tmp_path: Path, text: str) -> None:
    """A file whose top level is not a mapping (list, scalar, empty) is one problem."""
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].message == "the file must be a YAML mapping of top-level keys"


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """A config path that does not exist raises ConfigError naming the file."""
    path = tmp_path / "missing.yaml"
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].file == str(path)
    assert problems[0].line is None
    assert problems[0].message.startswith("cannot read")


def test_undecodable_file_is_a_config_error(tmp_path: Path) -> None:
    """A file with invalid UTF-8 bytes is reported as a ConfigError, not a crash."""
    path = tmp_path / "repricerd.yaml"
    path.write_bytes(b'database: "\xff\xfe"\n' + MINIMAL.encode())
    assert len(problems_of(path)) == 1


# --- schema problems, each with key and line -------------------------------------------------

MANY_SCHEMA_PROBLEMS = """\
server:
  port: 8080
  colour: blue
schedule:
  reprice: 5 minutes
channels:
  shop:
    kind: mock
pricing:
  guards:
    max_step_pct: 150
  rules:
    - strategy: cost_plus
      params:
        margin_pct: lots
    - strategy: magic
      params: {}
    - strategy: cost_plus
      params: {margin_pct: 10, extra: 1}
    - strategy: hold
"""


def test_schema_problems_are_all_reported_together(tmp_path: Path) -> None:
    """Type, range, unknown-key, duration and unknown-strategy errors come out in one go."""
    path = write(tmp_path, MANY_SCHEMA_PROBLEMS)
    problems = by_key(problems_of(path))
    expected = {
        "server.colour": (line_of(path, "colour:"), "unknown key"),
        "schedule.reprice": (line_of(path, "reprice:"), "a duration like 30s, 5m, 1h or 1d"),
        "pricing.guards.max_step_pct": (
            line_of(path, "max_step_pct:"),
            "Input should be less than or equal to 100",
        ),
        "pricing.rules[0].params.margin_pct": (
            line_of(path, "margin_pct: lots"),
            "Input should be a valid decimal",
        ),
        "pricing.rules[2].params.extra": (line_of(path, "extra: 1"), "unknown key"),
    }
    for key, (line, message) in expected.items():
        assert (problems[key].line, problems[key].message) == (line, message), key
    # The unknown strategy is reported on the rule itself, naming the bad tag and the valid ones.
    magic = problems["pricing.rules[1]"]
    assert magic.line == line_of(path, "strategy: magic")
    assert "'magic'" in magic.message
    assert "cost_plus" in magic.message
    assert set(problems) == {*expected, "pricing.rules[1]"}
    # Problems come sorted by line.
    lines = [p.line or 0 for p in problems_of(path)]
    assert lines == sorted(lines)


SEMANTIC_PROBLEMS = """\
channels:
  shop:
    kind: mock
inventory:
  channels:
    ghost: {max: 3}
pricing:
  rules:
    - match: {channel: nowhere}
      strategy: hold
    - strategy: hold
    - name: shop-only
      match:
        channel: [shop, elsewhere]
      strategy: hold
    - match: {sku: "X-*"}
      strategy: hold
"""


def test_cross_field_problems_are_all_reported_together(tmp_path: Path) -> None:
    """Unknown channels, a non-last default rule and a last rule with `match` all come out."""
    path = write(tmp_path, SEMANTIC_PROBLEMS)
    got = [(p.key, p.line, p.message) for p in problems_of(path)]
    assert got == [
        ("inventory.channels.ghost", line_of(path, "ghost:"), "unknown channel 'ghost'"),
        (
            "pricing.rules[0].match.channel",
            line_of(path, "channel: nowhere"),
            "unknown channel 'nowhere'",
        ),
        (
            "pricing.rules[1]",
            line_of(path, "- strategy: hold"),
            "a rule without match must be the last (the default)",
        ),
        (
            "pricing.rules[2].match.channel",
            line_of(path, "channel: [shop, elsewhere]"),
            "unknown channel 'elsewhere'",
        ),
        (
            "pricing.rules[3].match",
            line_of(path, 'match: {sku: "X-*"}'),
            "the last rule is the default: it must have no match",
        ),
    ]


def test_literal_secret_and_cross_field_problems_are_reported_together(tmp_path: Path) -> None:
    """Once the schema validates, literal secrets and cross-field problems share one report."""
    path = write(
        tmp_path,
        """\
        channels:
          shop:
            kind: mock
            webhook_secret: plaintext
        inventory:
          channels:
            ghost: {max: 1}
        pricing:
          rules:
            - strategy: hold
        """,
    )
    assert {p.key for p in problems_of(path)} == {
        "channels.shop.webhook_secret",
        "inventory.channels.ghost",
    }


def test_missing_required_sections_are_named(tmp_path: Path) -> None:
    """A file without `channels` and `pricing` names both missing keys."""
    path = write(tmp_path, "server:\n  port: 8080\n")
    problems = by_key(problems_of(path))
    assert set(problems) == {"channels", "pricing"}
    for problem in problems.values():
        assert problem.message == "required key is missing"
        assert problem.line == 1


def test_yaml_floats_become_exact_decimals(tmp_path: Path) -> None:
    """A YAML float such as 0.1 or 12.5 is read as the exact Decimal it spells."""
    path = write(
        tmp_path,
        """\
        channels:
          shop:
            kind: mock
        pricing:
          guards: {min_margin_pct: 0.1}
          rules:
            - strategy: cost_plus
              params: {margin_pct: 12.5}
        """,
    )
    settings = load_config(path, environ={}).settings
    assert settings.pricing.guards.min_margin_pct == Decimal("0.1")
    assert settings.pricing.rules[0].params.margin_pct == Decimal("12.5")  # type: ignore[union-attr]


def test_problem_inside_merged_mapping_is_reported(tmp_path: Path) -> None:
    """A bad value that arrives through a YAML `<<:` merge key is still a ConfigError."""
    path = write(
        tmp_path,
        """\
        channels:
          shop:
            <<: {kind: mock, competitors: 99}
        pricing:
          rules:
            - strategy: hold
        """,
    )
    assert {p.key for p in problems_of(path)} == {"channels.shop.competitors"}


def test_missing_key_is_named_even_if_a_value_spells_it(tmp_path: Path) -> None:
    """A missing required key is named by its path even when some value equals its name."""
    path = write(
        tmp_path,
        """\
        channels:
          shop:
            kind: mock
        pricing:
          rules:
            - {name: params, strategy: fixed}
        """,
    )
    assert [p.key for p in problems_of(path)] == ["pricing.rules[0].params"]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        ("90", 90),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86400),
        ("250ms", 0.25),
        ("1.5h", 5400),
        (Decimal("2.5"), 2.5),
    ],
)
def test_parse_duration_accepts_units(value: object, seconds: float) -> None:
    """Bare numbers are seconds; ms/s/m/h/d suffixes scale them."""
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["5 minutes", "-1s", "5x", "", "m", True, None, [5]])
def test_parse_duration_rejects_garbage(value: object) -> None:
    """Words, negative strings, unknown units, booleans and non-scalars are ValueErrors."""
    with pytest.raises(ValueError, match="a duration like"):
        parse_duration(value)


def test_schedule_durations_in_yaml(tmp_path: Path) -> None:
    """`schedule` values in the YAML accept every duration form."""
    path = write(
        tmp_path,
        MINIMAL + "schedule: {reprice: 90, stock_sync: 30s, reconcile: 1h, misfire_grace: 250ms}\n",
    )
    schedule = load_config(path, environ={}).settings.schedule
    assert schedule.reprice == timedelta(seconds=90)
    assert schedule.stock_sync == timedelta(seconds=30)
    assert schedule.reconcile == timedelta(hours=1)
    assert schedule.misfire_grace == timedelta(milliseconds=250)


def test_orders_poll_is_on_by_default_and_can_be_switched_off(tmp_path: Path) -> None:
    """`schedule.orders_poll` defaults to 5 minutes with a 24 h first look-back; null disables."""
    default = load_config(write(tmp_path, MINIMAL), environ={}).settings.schedule
    assert default.orders_poll == timedelta(minutes=5)
    assert default.orders_lookback == timedelta(hours=24)
    path = write(tmp_path, MINIMAL + "schedule: {orders_poll: null, orders_lookback: 2h}\n")
    schedule = load_config(path, environ={}).settings.schedule
    assert schedule.orders_poll is None
    assert schedule.orders_lookback == timedelta(hours=2)


def test_negative_numeric_schedule_is_rejected(tmp_path: Path) -> None:
    """A negative bare-number interval such as `reprice: -5` is a config problem."""
    path = write(tmp_path, MINIMAL + "schedule:\n  reprice: -5\n")
    assert [p.key for p in problems_of(path)] == ["schedule.reprice"]


def test_offers_max_age_accepts_0s_and_only_there(tmp_path: Path) -> None:
    """`offers_max_age: 0s` (always poll) passes `repricerd check`; 0 for any other interval
    is still refused, and `offers_max_age` still refuses a negative age."""
    path = write(tmp_path, MINIMAL + "schedule:\n  offers_max_age: 0s\n")
    assert load_config(path, environ={}).settings.schedule.offers_max_age == timedelta(0)
    code = CliRunner().invoke(main, ["check", "-c", str(path)])
    assert code.exit_code == 0, code.output
    assert "ok" in code.stdout
    path = write(tmp_path, MINIMAL + "schedule:\n  offers_max_age: 0\n  reprice: 0s\n")
    [problem] = problems_of(path)
    assert problem.key == "schedule.reprice"
    assert problem.line == line_of(path, "reprice: 0s")
    assert "more than 0" in problem.message
    path = write(tmp_path, MINIMAL + "schedule:\n  offers_max_age: -1\n")
    [problem] = problems_of(path)
    assert problem.key == "schedule.offers_max_age"
    assert "0 (0s) or more" in problem.message


def test_infinite_schedule_is_a_config_error(tmp_path: Path) -> None:
    """`reprice: .inf` is reported as a problem on schedule.reprice, not a crash."""
    path = write(tmp_path, MINIMAL + "schedule:\n  reprice: .inf\n")
    assert [p.key for p in problems_of(path)] == ["schedule.reprice"]


# --- which file ------------------------------------------------------------------------------


def test_config_path_explicit_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit -c path is used even when REPRICERD_CONFIG is set."""
    monkeypatch.setenv(ENV_CONFIG, "/etc/repricerd/from-env.yaml")
    assert config_path("given.yaml") == Path("given.yaml")
    assert config_path(Path("/abs/given.yaml")) == Path("/abs/given.yaml")


def test_config_path_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -c, REPRICERD_CONFIG names the file."""
    monkeypatch.setenv(ENV_CONFIG, "/etc/repricerd/from-env.yaml")
    assert config_path(None) == Path("/etc/repricerd/from-env.yaml")


def test_config_path_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -c or REPRICERD_CONFIG (unset or empty), config/repricerd.yaml is used."""
    monkeypatch.delenv(ENV_CONFIG, raising=False)
    assert config_path(None) == DEFAULT_CONFIG_PATH == Path("config/repricerd.yaml")
    monkeypatch.setenv(ENV_CONFIG, "")
    assert config_path(None) == DEFAULT_CONFIG_PATH


def test_digest_tracks_file_content(tmp_path: Path) -> None:
    """The digest is stable for the same bytes and changes when the file changes."""
    path = write(tmp_path, MINIMAL)
    first = load_config(path, environ={}).digest
    assert load_config(path, environ={}).digest == first
    path.write_text(MINIMAL + "inventory: {buffer: 2}\n", encoding="utf-8")
    assert load_config(path, environ={}).digest != first


def test_host_override_and_short_secrets(tmp_path: Path) -> None:
    """REPRICERD_HOST replaces server.host; an empty or short secret is refused (anyone could
    sign webhooks with it)."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "channels: {shop: {kind: mock, webhook_secret: '${S}'}}\n"
        "pricing: {rules: [{strategy: hold}]}\n"
    )
    loaded = load_config(path, {"S": "long-enough-secret", "REPRICERD_HOST": "192.0.2.10"})
    assert loaded.settings.server.host == "192.0.2.10"
    for short in ("", "abc"):
        with pytest.raises(ConfigError) as err:
            load_config(path, {"S": short})
        assert "shorter than 8" in str(err.value)


def test_production_example_is_valid_with_its_secrets_in_the_environment() -> None:
    """The commented production example validates once its ${ENV} secrets are provided."""
    path = ROOT / "config" / "production.example.yaml"
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", path.read_text()))
    environ = {name: f"example-secret-{name.lower()}" for name in names}
    loaded = load_config(path, environ=environ)
    kinds = {cfg.kind for cfg in loaded.settings.channels.values()}
    assert kinds == {"amazon", "shopify", "walmart", "ebay"}
    # New Shopify installs are Dev Dashboard apps: the example shows client credentials.
    shop = loaded.settings.channels["shop"]
    assert shop.kind == "shopify"
    assert (shop.client_id, shop.access_token) == ("0123456789abcdef0123456789abcdef", None)


def test_load_without_secrets_leaves_channel_secrets_unresolved(tmp_path: Path) -> None:
    """`resolve_secrets=False` (history, explain, simulate, status): an unset channel secret
    becomes the placeholder UNRESOLVED instead of being an error, and is no known secret; the
    database URL (and every other key) is still resolved and checked."""
    text = MINIMAL.replace("kind: mock", f"kind: mock\n    webhook_secret: ${{{UNSET_VAR}}}")
    path = write(tmp_path, text + "database: ${REPRICERD_TEST_DB_URL}\n")
    [problem] = problems_of(path, {"REPRICERD_TEST_DB_URL": "sqlite:///x.db"})
    assert problem.key == "channels.shop.webhook_secret"
    loaded = load_config(
        path, environ={"REPRICERD_TEST_DB_URL": "sqlite:///x.db"}, resolve_secrets=False
    )
    secret = loaded.settings.channels["shop"].webhook_secret  # type: ignore[union-attr]
    assert secret is not None
    assert secret.get_secret_value() == UNRESOLVED
    assert loaded.settings.database == "sqlite:///x.db"
    assert loaded.secrets == ("sqlite:///x.db",)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, resolve_secrets=False)
    assert [p.key for p in info.value.problems] == ["database"]
