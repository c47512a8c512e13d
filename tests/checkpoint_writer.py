"""Subprocess for ``tests/test_checkpoints.py``: saves two different MLPs in turn onto one checkpoint path until it
is killed, printing ``ready`` once the first save is done. Every rename is followed by a 0.1 s pause (a slow
file system), so a window between two renames would be hit by a kill at a random moment."""

import os
import sys
import time

from tasar_jax import checkpoints, models


def _slow_replace(src, dst, _replace=os.replace):
    _replace(src, dst)
    time.sleep(0.1)


def main(path: str) -> None:
    os.replace = _slow_replace
    pair = [models.create("mlp", "hdm05", hidden=16, num_classes=4, seed=s) for s in (0, 1)]
    for i in range(10**6):
        checkpoints.save(path, pair[i % 2], architecture="mlp", dataset="hdm05", seed=i % 2)
        if i == 0:
            print("ready", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
