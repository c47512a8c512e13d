"""Import rules: the library never imports converters/experiments (except the CLI), nothing imports the CLI,
and the core package works without torch."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(*folders):
    for folder in folders:
        yield from (ROOT / folder).rglob("*.py")


def test_library_does_not_import_converters_experiments_or_torch():
    for path in _python_files("tasar_jax"):
        if path.relative_to(ROOT).parts[:2] == ("tasar_jax", "cli"):
            continue
        bad = {n for n in _imports(path) if n.split(".")[0] in ("converters", "experiments", "torch")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_nothing_imports_the_cli():
    for path in _python_files("tasar_jax", "converters", "experiments"):
        if path.relative_to(ROOT).parts[:2] == ("tasar_jax", "cli"):
            continue
        assert not any(n == "tasar_jax.cli" or n.startswith("tasar_jax.cli.") for n in _imports(path)), path


def test_core_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import tasar_jax, tasar_jax.models, tasar_jax.training, tasar_jax.checkpoints, tasar_jax.pipeline\n"
        "import tasar_jax.data.formats, tasar_jax.data.synthetic\n"
        "m = tasar_jax.models.create('stgcn', 'hdm05', width=0.125)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_the_wheel_ships_what_the_demo_reads(tmp_path):
    """README command (A) installs the wheel, not the checkout: the demo's config must be inside it."""
    import shutil
    import zipfile

    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", ".*cache", ".hypothesis", "__pycache__", "tasar-demo"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("tasar_jax-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"experiments/demo.py", "experiments/configs/demo.toml", "tasar_jax/cli/__init__.py"} <= names
