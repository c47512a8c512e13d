"""Import rules: the library never imports the converters, experiments or torch (except the CLI; the converters,
installed as ``tasar_jax.converters``, may use torch), nothing imports the CLI or ``experiments``, the core
package works without torch, and the wheel installs only the ``tasar_jax`` namespace. Dataset differences live in
the dataset table: no library module branches on a dataset's name."""

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
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # from tasar_jax import converters
    return names


def _python_files(*folders):
    for folder in folders:
        yield from (ROOT / folder).rglob("*.py")


def test_library_does_not_import_converters_experiments_or_torch():
    for path in _python_files("tasar_jax"):
        if path.relative_to(ROOT).parts[:2] == ("tasar_jax", "cli"):
            continue
        bad = {n for n in _imports(path)
               if n.split(".")[0] in ("converters", "experiments", "torch") or n.startswith("tasar_jax.converters")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_nothing_imports_the_cli():
    for path in _python_files("tasar_jax", "converters", "experiments"):
        if path.relative_to(ROOT).parts[:2] == ("tasar_jax", "cli"):
            continue
        assert not any(n == "tasar_jax.cli" or n.startswith("tasar_jax.cli.") for n in _imports(path)), path


# (file, the name it may compare with, why)
NAME_BRANCHES = {("tasar_jax/models/agcn.py", "hdm05"): "upstream's shifted HDM05 graph (quirk §7.10) is that "
                 "skeleton's own"}


def _name_branches(path: pathlib.Path, names: set[str]):
    """``x == "hdm05"``, ``x in ("ntu60", ...)``, ``x.startswith("ntu")``, ``"hdm05" if … else "ntu120"``: a test
    of, or a guess at, a dataset's name."""
    for node in ast.walk(ast.parse(path.read_text())):
        sides = ([node.left, *node.comparators] if isinstance(node, ast.Compare)
                 else [node.body, node.orelse] if isinstance(node, ast.IfExp) else [])
        if sides:
            for side in sides:
                for const in ast.walk(side):
                    if isinstance(const, ast.Constant) and const.value in names:
                        yield node.lineno, const.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and any(n.startswith(node.args[0].value) for n in names)):
            yield node.lineno, node.args[0].value


def test_no_module_branches_on_a_dataset_name():
    from tasar_jax.data import layouts

    names = set(layouts.DATASETS) | set(layouts.SKELETONS) | {"ntu"}
    found = []
    for path in _python_files("tasar_jax"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("tasar_jax/data/layouts.py", "tasar_jax/data/catalog.py"):
            continue
        found += [f"{rel}:{line} tests {name!r}" for line, name in _name_branches(path, names)
                  if (rel, name) not in NAME_BRANCHES]
    assert not found, "dataset differences belong in data/layouts.py's tables:\n" + "\n".join(found)


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
    assert {"tasar_jax/demo.py", "tasar_jax/configs/demo.toml", "tasar_jax/cli/__init__.py",
            "tasar_jax/converters/__init__.py", "tasar_jax/converters/keymaps/stgcn.py",
            "tasar_jax/converters/reference/stgcn.py"} <= names
    sources = {f"tasar_jax/{p.relative_to(ROOT / 'tasar_jax').as_posix()}" for p in _python_files("tasar_jax")}
    sources |= {f"tasar_jax/converters/{p.relative_to(ROOT / 'converters').as_posix()}" for p in _python_files("converters")}
    assert sources <= names, f"pyproject.toml's package list misses {sorted(sources - names)[:5]}"
    tops = {name.split("/")[0] for name in names if not name.startswith("tasar_jax-")}  # minus the dist-info
    assert tops == {"tasar_jax"}, f"the wheel installs top-level {sorted(tops)}; only tasar_jax may be one"


STREAM_MODULE = "tasar_jax/models/streams.py"
PROBED_TYPES = {"TwoStream", "Posterior", "HeadParams"}
PROBED_ATTRIBUTES = {"stream_logits", "heads"}


def _stream_probes(path: pathlib.Path):
    """``hasattr(m, "stream_logits")``, ``isinstance(p, Posterior)``, ``m.stream_logits(x)``: telling a single model
    from a two-stream ensemble (or a posterior from a pair) by looking at it."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "hasattr" and len(node.args) == 2 \
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in PROBED_ATTRIBUTES:
            yield node.lineno, f"hasattr(…, {node.args[1].value!r})"
        elif isinstance(func, ast.Name) and func.id == "isinstance" and len(node.args) == 2:
            names = {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node.args[1])
                     if isinstance(n, (ast.Name, ast.Attribute))}
            if names & PROBED_TYPES:
                yield node.lineno, f"isinstance(…, {sorted(names & PROBED_TYPES)})"
        elif isinstance(func, ast.Attribute) and func.attr == "stream_logits" and not (
                isinstance(func.value, ast.Name) and func.value.id in ("self", "streams")):
            yield node.lineno, "….stream_logits(…)"


def test_streams_are_told_apart_in_one_module():
    """Per-stream values are tuples (length 1 or 2); only ``models/streams.py`` looks at a model to tell which."""
    found = [f"{path.relative_to(ROOT).as_posix()}:{line} {what}"
             for path in _python_files("tasar_jax", "experiments") if path.relative_to(ROOT).as_posix() != STREAM_MODULE
             for line, what in _stream_probes(path)]
    assert not found, "use tasar_jax.models.streams (num_streams, stream_logits, check_per_stream):\n" + "\n".join(found)


def test_the_stream_probe_check_finds_probes(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("a = hasattr(m, 'stream_logits')\nb = isinstance(p, H.Posterior)\nc = model.stream_logits(x)\n"
                     "d = streams.stream_logits(model, x)\ne = isinstance(v, (list, tuple))\n")
    assert [line for line, _ in _stream_probes(probe)] == [1, 2, 3]


def test_one_bone_lengths():
    defined = [f"{path.relative_to(ROOT).as_posix()}:{node.lineno}" for path in _python_files("tasar_jax")
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == "bone_lengths"]
    assert len(defined) == 1 and defined[0].startswith("tasar_jax/models/streams.py:"), defined


def test_the_attacks_package_exports_no_generic_name_that_is_one_attacks():
    import tasar_jax.attacks as attacks

    generic = {"init", "step", "update", "gradients", "run", "motion_term", "fool_rates"}
    assert not generic & set(attacks.__all__) and not any(hasattr(attacks, name) for name in generic)


def test_attacks_are_built_by_name_in_one_place():
    """Outside ``tasar_jax/attacks``, an attack named at run time comes from ``attacks.build``: no module imports
    the registry, and the command line imports nothing else from the attacks package. (A module that always runs
    one particular attack, like TRADES' I-FGSM validation, may call that attack's constructor.)"""
    found = []
    for path in _python_files("tasar_jax", "experiments"):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("tasar_jax", "attacks"):
            continue
        cli = rel.parts[:2] == ("tasar_jax", "cli")
        found += [f"{rel.as_posix()}: {n}" for n in _imports(path) if n.startswith("tasar_jax.attacks")
                  and (n == "tasar_jax.attacks.registry" or (cli and n not in ("tasar_jax.attacks",
                                                                            "tasar_jax.attacks.build")))]
    assert not found, "build attacks by name with tasar_jax.attacks.build:\n" + "\n".join(found)


def test_one_cross_entropy():
    """``tasar_jax/losses.py`` defines the cross-entropy; nothing else defines one or calls optax's."""
    found = []
    for path in _python_files("tasar_jax"):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and "cross_entropy" in node.name and rel != "tasar_jax/losses.py":
                found.append(f"{rel}:{node.lineno} defines {node.name}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("softmax_cross_entropy"):
                found.append(f"{rel}:{node.lineno} calls {node.attr}")
    assert not found, "use tasar_jax.losses.cross_entropy:\n" + "\n".join(found)


def test_one_progress_bar():
    """Long loops show ``tasar_jax.progress.bar``; no other module builds a ``rich`` ``Progress`` of its own."""
    found = [f"{path.relative_to(ROOT).as_posix()}:{node.lineno}" for path in _python_files("tasar_jax")
             if path.relative_to(ROOT).as_posix() != "tasar_jax/progress.py"
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Progress"]
    assert not found, "use tasar_jax.progress.bar:\n" + "\n".join(found)


def test_one_fit_loop():
    """Training, TRADES, BEAT, SWAG fine-tuning and post-training run their epochs through ``tasar_jax.fit.fit``:
    no other library loop iterates over a range of epochs, and none tracks a progress bar of its own."""
    found = []
    for path in _python_files("tasar_jax"):
        name = path.relative_to(ROOT).as_posix()
        if name == "tasar_jax/fit.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.For) and isinstance(node.iter, ast.Call)
                    and getattr(node.iter.func, "id", None) == "range" and "epoch" in ast.unparse(node.iter)):
                found.append(f"{name}:{node.lineno}: for … in {ast.unparse(node.iter)}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "track":
                found.append(f"{name}:{node.lineno}: track(…)")
    assert not found, "run epochs through tasar_jax.fit.fit:\n" + "\n".join(found)


def test_stages_touch_no_files_and_the_benchmark_keeps_out_of_the_cli_layer():
    """``tasar_jax/stages.py`` works on objects (no checkpoint, dataset-file or artefact module, no open/np.save/
    np.load); persistence is the CLI's (``pipeline``) and the benchmark's, and the benchmark does not go through
    the CLI's file layer."""
    tree = ast.parse((ROOT / "tasar_jax" / "stages.py").read_text())
    found = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             and any(name in ast.unparse(node) for name in ("checkpoints", "formats", "artefacts", "pipeline"))]
    found += [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)
              and ast.unparse(node.func) in ("open", "np.save", "np.savez", "np.savez_compressed", "np.load")]
    assert not found, f"stages.py touches files: {found}"
    for path in _python_files("tasar_jax/benchmark"):
        imports = [ast.unparse(node) for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, (ast.Import, ast.ImportFrom)) and "pipeline" in ast.unparse(node)]
        assert not imports, f"{path.name} imports the CLI's file layer: {imports}"
