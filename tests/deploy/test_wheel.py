"""The package as an application installs it: the wheel holds one top-level name, ``driftline``
(the repository's ``agent/``, ``collector/`` and ``detectors/`` folders under it, their data files
included), so an application's own ``agent`` or ``collector`` module is never shadowed; and the
SDK imports from an installed wheel beside such a module."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("driftline-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"driftline"}
    for needed in (
        "driftline/agent/contract.py",
        "driftline/collector/store/migrations/script.py.mako",
        "driftline/collector/store/migrations/versions/0001_initial_schema.py",
        "driftline/collector/web/ui/templates/base.html",
        "driftline/detectors/hysteresis.py",
    ):
        assert needed in names
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]


def test_an_application_with_its_own_agent_module_imports_the_sdk(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel is installed by unpacking it
    app = tmp_path / "app"
    app.mkdir()
    (app / "agent.py").write_text('NAME = "the application\'s own agent"\n')
    (app / "collector.py").write_text('NAME = "the application\'s own collector"\n')
    code = (
        "import agent, collector\n"
        "from driftline.agent import Driftline\n"
        "from driftline.agent.contract import DecisionEvent\n"
        "import driftline\n"
        "print(agent.NAME, collector.NAME, Driftline.__module__, driftline.__file__, sep=' | ')\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path[:0] = ['', {str(site)!r}]\n{code}"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" | ") == [
        "the application's own agent",
        "the application's own collector",
        "driftline.agent.client",
        f"{site / 'driftline' / '__init__.py'}\n",
    ]
