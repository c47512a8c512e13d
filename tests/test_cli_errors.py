"""Bad input through the real command line: exit code 2, one line naming the problem, no traceback, and nothing
written where the command would have written (issue 16). Every case runs through ``cli.main`` in this process (what
the ``tasar-jax`` script calls); a few also run as a subprocess, to check the exit status the shell sees."""

import contextlib
import io
import json
import os
import pathlib
import subprocess
import sys
import traceback

import numpy as np
import pytest

from tasar_jax import checkpoints, cli, models
from tasar_jax.data import formats, synthetic

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = "import sys; from tasar_jax.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small synthetic HDM05 data root, an untrained MLP checkpoint and a set of broken inputs."""
    root = tmp_path_factory.mktemp("bad")
    synthetic.write_dataset(root / "data", "hdm05", 1, 1, seed=0, classes=[0, 1, 2])
    checkpoints.save(root / "ck", models.create("mlp", "hdm05", hidden=8), architecture="mlp", dataset="hdm05")
    checkpoints.save(root / "ck_ntu", models.create("mlp", "ntu60", hidden=8), architecture="mlp", dataset="ntu60")
    (root / "a_file").write_text("not a folder")
    np.save(root / "nan.npy", np.full((1, 3, 60, 25, 1), np.nan, np.float32))
    np.save(root / "four_channels.npy", np.zeros((1, 4, 60, 25, 1), np.float32))
    np.save(root / "good.npy", np.zeros((2, 3, 60, 25, 1), np.float32))
    (root / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 not a zip")
    (root / "corrupt.pth").write_bytes(b"not a torch file")
    meta = json.loads((root / "ck" / "metadata.json").read_text())
    checkpoints.save(root / "no_arch", models.create("mlp", "hdm05", hidden=8), architecture="mlp", dataset="hdm05")
    del meta["architecture"]
    (root / "no_arch" / "metadata.json").write_text(json.dumps(meta))
    clips, _ = formats.read_raw(root / "data" / "hdm05" / "classTest.npz", "hdm05")
    (root / "labels" / "hdm05").mkdir(parents=True)
    formats.write_raw(root / "labels" / "hdm05" / "classTest.npz", clips, np.full(len(clips), 99))
    formats.write_raw(root / "gathered.npz", clips, np.arange(len(clips)))
    (root / "typo.toml").write_text('name = "t"\ndataset = "hdm05"\nsurrogates = ["mlp"]\ntagrets = ["mlp"]\n'
                                    '[models.mlp]\n[attacks.fgsm]\n')
    (root / "broken.toml").write_text('name = "t\n')
    (root / "ok.toml").write_text('name = "t"\ndataset = "hdm05"\nsurrogates = ["mlp"]\ntargets = ["mlp"]\n'
                                  '[models.mlp]\n[attacks.fgsm]\n')
    return root


# (argv with {r} for the fixture folder, a fragment the one-line message must contain, the path that must not appear)
CASES = [
    # data
    ("data synth --dataset hdm05 --train-per-class 0 --out {o}", "--train-per-class: must be ≥ 1", "{o}"),
    ("data synth --dataset hdm05 --classes 70 --out {o}", "class", "{o}"),
    ("data synth --dataset hdm05 --classes x-y --out {o}", "class list", "{o}"),
    ("data synth --dataset hdm05 --out {r}/a_file/sub", "a_file", None),
    ("data show --data {r}/missing --out {o}.png", "missing", "{o}.png"),
    # train
    ("train --arch mlp --data {r}/missing --out {o}", "missing", "{o}"),
    ("train --arch mlp --data {r}/data --epochs 0 --out {o}", "--epochs: must be ≥ 1", "{o}"),
    ("train --arch mlp --data {r}/data --lr -1 --out {o}", "--lr: must be > 0", "{o}"),
    ("train --arch mlp --data {r}/data --batch-size 0 --out {o}", "--batch-size: must be ≥ 1", "{o}"),
    ("train --arch stgcn --data {r}/data --width 0 --out {o}", "--width: must be > 0", "{o}"),
    ("train --arch mlp --dataset nosuch --data {r}/data --out {o}", "nosuch", "{o}"),
    ("train --arch mlp --data {r}/labels --test-file classTest.npz --train-file classTest.npz --out {o}",
     "labels must lie in [0, 65)", "{o}"),
    ("train --arch mlp --data {r}/data --out {r}/a_file/o", "a_file", None),
    # test / gather / predict
    ("test --model {r}/missing --data {r}/data", "not a tasar-jax checkpoint", None),
    ("test --model {r}/no_arch --data {r}/data", "architecture", None),
    ("test --model {r}/ck --data {r}/data --test-file nosuch.npz", "nosuch.npz", None),
    ("test --model {r}/ck_ntu --data {r}/data", "ntu60", None),
    ("gather --model {r}/ck --data {r}/missing --out {o}.npz", "missing", "{o}.npz"),
    ("predict --model {r}/ck --out {o}.npy {r}/nan.npy", "NaN/inf", "{o}.npy"),
    ("predict --model {r}/ck --out {o}.npy {r}/four_channels.npy", "C=3", "{o}.npy"),
    ("predict --model {r}/ck --out {o}.npy {r}/corrupt.npy", "corrupt.npy", "{o}.npy"),
    ("predict --model {r}/ck --out {o}.npy {r}/corrupt.npz", "corrupt.npz", "{o}.npy"),
    ("predict --model {r}/ck --out {o}.npy {r}/missing.npy", "missing.npy", "{o}.npy"),
    # attacks and their inputs
    ("attack --model {r}/ck --data {r}/gathered.npz --epsilon -0.01 --out {o}.npz", "--epsilon: must be > 0", "{o}.npz"),
    ("attack --model {r}/ck --data {r}/gathered.npz --iterations 0 --out {o}.npz", "--iterations: must be ≥ 1", "{o}.npz"),
    ("attack --model {r}/ck --data {r}/gathered.npz --step -1 --out {o}.npz", "step", "{o}.npz"),
    ("attack --model {r}/ck --data {r}/gathered.npz --method fgsm --set nosuch=1 --out {o}.npz", "nosuch", "{o}.npz"),
    ("attack --model {r}/ck --data {r}/gathered.npz --set decay --out {o}.npz", "KEY=VALUE", "{o}.npz"),
    ("attack --model {r}/ck --data {r}/gathered.npz --batch-size 0 --out {o}.npz", "--batch-size: must be ≥ 1", "{o}.npz"),
    ("attack --model {r}/ck --data {r}/gathered.npz --method fgsm --memory-budget lots --out {o}.npz", "lots", "{o}.npz"),
    ("attack --method tasar --model {r}/ck --data {r}/gathered.npz --out {o}.npz", "posterior", "{o}.npz"),
    ("attack --method ensemble --model {r}/ck --data {r}/gathered.npz --member {r}/ck_ntu --out {o}.npz", "ntu60",
     "{o}.npz"),
    ("attack --model {r}/missing --data {r}/gathered.npz --out {o}.npz", "not a tasar-jax checkpoint", "{o}.npz"),
    ("posttrain --model {r}/ck --data {r}/data --heads 0 --out {o}.npz", "--heads: must be ≥ 1", "{o}.npz"),
    ("posttrain --model {r}/ck --data {r}/data --epochs 0 --out {o}.npz", "--epochs: must be ≥ 1", "{o}.npz"),
    ("finetune --model {r}/ck --data {r}/data --epochs 0 --out {o}", "--epochs: must be ≥ 1", "{o}"),
    ("motion --out {o}.npz {r}/missing.npy", "missing.npy", "{o}.npz"),
    ("motion --bandwidth -1 --out {o}.npz {r}/good.npy", "--bandwidth: must be > 0", "{o}.npz"),
    # conversion and assembly
    ("convert --arch stgcn --dataset hdm05 --out {o} {r}/absent.pth", "absent.pth", "{o}"),
    ("convert --arch nosuch --dataset hdm05 --out {o} {r}/corrupt.pth", "nosuch", "{o}"),
    ("ensemble --joint {r}/ck --bone {r}/ck --out {o}", "mlp", "{o}"),
    # benchmark configs
    ("benchmark {r}/missing.toml --workdir {o}", "missing.toml", "{o}"),
    ("benchmark {r}/broken.toml --workdir {o}", "broken.toml", "{o}"),
    ("benchmark {r}/typo.toml --workdir {o}", "did you mean 'targets'", "{o}"),
    ("benchmark {r}/ok.toml --workdir {r}/a_file", "a_file", None),
]


def _argv(index: int, argv: str, root: pathlib.Path) -> list[str]:
    return argv.format(r=root, o=root / f"out{index}").split()


def _run_in_process(args: list[str]) -> tuple[int, str]:
    """``cli.main(args)``'s exit status and everything it printed; an escaping exception counts as a traceback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = cli.main(args)
        except SystemExit as stop:  # argparse rejects a value
            code = stop.code
        except BaseException:  # noqa: BLE001 - reported as the failure it is
            code = None
            out.write(traceback.format_exc())
    return code, out.getvalue()


def _run_subprocess(args: list[str], root: pathlib.Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "COLUMNS": "300"}
    proc = subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, cwd=root, env=env,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def _problems(index: int, case: tuple, code: int, text: str, root: pathlib.Path) -> list[str]:
    argv, fragment, output = case
    problems = []
    lines = [line for line in text.splitlines() if "error" in line]
    if code != 2 or "Traceback" in text or len(lines) != 1 or fragment not in lines[0]:
        problems.append(f"{argv}: exit {code}, output {text.strip()[-400:]!r}")
    if output and pathlib.Path(output.format(r=root, o=root / f"out{index}")).exists():
        problems.append(f"{argv}: wrote {output}")
    return problems


def test_every_bad_input_is_one_clear_line_and_writes_nothing(files):
    assert len(CASES) >= 30
    problems = []
    for index, case in enumerate(CASES):
        problems += _problems(index, case, *_run_in_process(_argv(index, case[0], files)), files)
    assert not problems, "\n".join(problems)


# one case per kind of failure: argparse's value check, a library ValueError, a missing file
@pytest.mark.parametrize("argv", [CASES[0][0], "data synth --dataset hdm05 --classes 70 --out {o}",
                                  "benchmark {r}/typo.toml --workdir {o}"])
def test_the_shell_sees_exit_status_2_and_one_line(argv, files):
    position = [c[0] for c in CASES].index(argv)
    case, index = CASES[position], len(CASES) + position  # its own output folder, apart from the in-process run's
    code, text = _run_subprocess(_argv(index, argv, files), files)
    assert not _problems(index, case, code, text, files)
