"""The layers as a checked contract.

``domain`` is the leaf; ``strategies``, ``connectors`` and ``inventory`` import it alone;
``daemon`` composes them. import-linter checks it (``make lint``); these tests show that an
inversion breaks the check, that the pricing and inventory cores load no HTTP, crypto or
database library, and that connectors are found through the one registry and loaded only when
used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.registry import CHANNELS, KINDS, settings_model, settings_models

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("domain", "strategies", "connectors", "inventory", "daemon")
IO_LIBRARIES = {"httpx", "aiohttp", "cryptography", "sqlalchemy", "sqlmodel"}


def _only_python(directory: str, names: list[str]) -> list[str]:
    """``copytree`` ignore hook: keep packages and modules, skip data, specs and caches."""
    return [
        name
        for name in names
        if name == "__pycache__"
        or (not name.endswith(".py") and not Path(directory, name).is_dir())
    ]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and pyproject.toml, for inversions the real tree never sees."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=_only_python)
    return root


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the packages under ``root`` with its pyproject.toml."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def inverted(tree: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The copy with one import line appended to one module, restored afterwards."""
    module, line = request.param
    path = tree / module
    original = path.read_text()
    path.write_text(f"{original}\n{line}\n")
    try:
        yield tree
    finally:
        path.write_text(original)


def test_the_layer_contracts_hold(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("inverted", "offender"),
    [
        # The cycle this layering removed: connectors importing the daemon's errors or clock.
        (("connectors/retry.py", "import daemon.config"), "connectors.retry -> daemon.config"),
        (("domain/clock.py", "import connectors.base"), "domain.clock -> connectors.base"),
        # The pricing core importing a connector (and with it httpx and cryptography).
        (("strategies/base.py", "import connectors.wire"), "strategies.base -> connectors.wire"),
        (("connectors/wire.py", "import strategies.base"), "connectors.wire -> strategies.base"),
        (("strategies/rounding.py", "import httpx"), "strategies.rounding -> httpx"),
        # The inventory core reaching into the daemon, a connector, the pricing core or a DB.
        (("inventory/restock.py", "import daemon.config"), "inventory.restock -> daemon.config"),
        (("inventory/health.py", "import connectors.wire"), "inventory.health -> connectors.wire"),
        (("strategies/base.py", "import inventory.fees"), "strategies.base -> inventory.fees"),
        (("inventory/fees.py", "import sqlalchemy"), "inventory.fees -> sqlalchemy"),
        # One connector borrowing another's helpers (walmart's money once came from amazon's).
        (
            ("connectors/walmart/models.py", "import connectors.amazon.models"),
            "connectors.walmart.models -> connectors.amazon.models",
        ),
    ],
    indirect=["inverted"],
)
def test_an_inversion_breaks_make_lint(inverted: Path, offender: str) -> None:
    result = lint_imports(inverted)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert offender in result.stdout


def loaded_by(statement: str) -> set[str]:
    """The modules in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    code = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(result.stdout))


def packages(modules: set[str]) -> set[str]:
    """The top-level packages of ``modules``."""
    return {name.partition(".")[0] for name in modules}


def test_the_pricing_core_loads_no_io_library_and_no_connector() -> None:
    loaded = packages(loaded_by("import strategies.engine"))
    assert "strategies" in loaded
    assert loaded.isdisjoint(IO_LIBRARIES | {"connectors", "daemon"}), sorted(loaded)


def test_the_inventory_core_loads_no_io_library_and_no_other_layer() -> None:
    loaded = packages(
        loaded_by("import inventory.forecast, inventory.restock, inventory.health, inventory.fees")
    )
    assert "inventory" in loaded
    assert loaded.isdisjoint(IO_LIBRARIES | {"connectors", "daemon", "strategies"}), sorted(loaded)


def test_importing_connectors_loads_no_connector() -> None:
    loaded = loaded_by("import connectors")
    assert "connectors.registry" in loaded
    assert loaded.isdisjoint({f"connectors.{kind}" for kind in KINDS}), sorted(loaded)
    assert packages(loaded).isdisjoint(IO_LIBRARIES), sorted(loaded)


def test_each_kind_is_registered_once_for_config_and_runtime() -> None:
    from daemon.settings import ChannelSettings

    assert list(CHANNELS) == list(KINDS)
    for kind in KINDS:
        assert typing.get_args(settings_model(kind).model_fields["kind"].annotation) == (kind,)
        assert CHANNELS[kind].__name__.lower() == f"{kind}channel"
    union, *_ = typing.get_args(ChannelSettings)
    assert typing.get_args(union) == settings_models()
    with pytest.raises(KeyError):
        CHANNELS["nope"]
