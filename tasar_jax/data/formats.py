"""Readers and writers of the upstream on-disk formats, with validation (host code).

HDM05 files hold ``clips`` (N, T, 75) joint-major (column ``3j + c`` is coordinate c of joint j); NTU60/NTU120 files
hold ``clips`` (N, 3, T, 25, M). Both hold integer ``classes`` (N,). Loading returns the common model layout
(N, C=3, T, V=25, M) as float32, exactly as upstream ``CDataset.__getitem__`` produces it (reference.md §1.1–1.2).
Each dataset's stored layout is its codec (``layouts.Dataset.codec``); nothing here branches on a name.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
import zipfile

import numpy as np

from tasar_jax.data import layouts


class DataFormatError(ValueError):
    """A data file is missing, corrupt or not in the expected format; the message names the file and the problem."""


def clips_to_common(clips: np.ndarray, dataset: str) -> np.ndarray:
    """Converts stored ``clips`` of ``dataset`` to the common layout (N, 3, T, V, M) float32 (its codec)."""
    return np.ascontiguousarray(layouts.get_dataset(dataset).codec.to_common(clips), dtype=np.float32)


def common_to_clips(x: np.ndarray, dataset: str) -> np.ndarray:
    """Inverse of :func:`clips_to_common`: the stored ``clips`` array of ``dataset`` for x (N, 3, T, V, M)."""
    try:
        clips = layouts.get_dataset(dataset).codec.from_common(x)
    except ValueError as err:
        raise ValueError(f"{dataset}: {err}") from None
    return np.ascontiguousarray(clips, dtype=np.float32)


def skateformer_input(x: np.ndarray) -> np.ndarray:
    """SkateFormer's input transform: zero-pad T at the end to 64 frames, keep its 24 re-indexed joints.

    Applied to every dataset, HDM05 included, as upstream does (reference.md §1.2, quirk §7.6).
    x: (N, 3, T, 25, M) → (N, 3, 64, 24, M).
    """
    n, c, t, v, m = x.shape
    if t < layouts.SKATEFORMER_FRAMES:
        pad = np.zeros((n, c, layouts.SKATEFORMER_FRAMES - t, v, m), dtype=x.dtype)
        x = np.concatenate([x, pad], axis=2)
    return x[:, :, :, list(layouts.SKATEFORMER_JOINTS)]


def validate_clips(x: np.ndarray, where: str, *, num_persons: int | None = None) -> None:
    """Checks a common-layout batch (N, 3, T, 25, M): rank, sizes, finiteness. Raises DataFormatError."""
    if x.ndim != 5:
        raise DataFormatError(f"{where}: expected a (N, 3, T, 25, M) array, got shape {x.shape}")
    n, c, t, v, m = x.shape
    if n == 0:
        raise DataFormatError(f"{where}: the array is empty (N = 0)")
    if c != layouts.NUM_CHANNELS or v != layouts.NUM_JOINTS or t == 0:
        raise DataFormatError(f"{where}: expected C=3, T>0, V=25 in (N, C, T, V, M), got shape {x.shape}")
    if num_persons is not None and m != num_persons:
        raise DataFormatError(f"{where}: expected M={num_persons} persons, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise DataFormatError(f"{where}: expected floating-point coordinates, got dtype {x.dtype}")
    bad = ~np.isfinite(x)
    if bad.any():
        samples = np.unique(np.nonzero(bad)[0])
        raise DataFormatError(
            f"{where}: {int(bad.sum())} NaN/inf values in {len(samples)} samples (first: {samples[:5].tolist()})"
        )


def validate_labels(labels: np.ndarray, n: int, num_classes: int, where: str) -> None:
    """Checks integer labels (n,) in [0, num_classes). Raises DataFormatError."""
    if labels.ndim != 1 or labels.shape[0] != n:
        raise DataFormatError(f"{where}: expected labels of shape ({n},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFormatError(
            f"{where}: labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]"
        )


def _read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise DataFormatError(f"{path}: not a readable .npz archive (truncated or corrupt?): {err}") from err


def dataset_of_file(path) -> str:
    """The dataset a file's stored ``clips`` fit, for reading it when none is named
    (``layouts.dataset_for_stored_shape``: of those that fit, the one with the most classes)."""
    path = pathlib.Path(path)
    data = _read_npz(path)
    if "clips" not in data:
        raise DataFormatError(f"{path}: missing key(s) ['clips']; found {sorted(data)}")
    try:
        return layouts.dataset_for_stored_shape(data["clips"].shape)
    except ValueError as err:
        raise DataFormatError(f"{path}: {err}") from None


def read_raw(path, dataset: str, *, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reads and validates a dataset file, returning the stored ``(clips, classes)`` unchanged.

    Args:
      path: an ``.npz`` file with keys ``clips`` and ``classes``.
      dataset: a name in ``layouts.DATASETS`` (its codec is the stored layout).
      num_classes: labels must lie in [0, num_classes); defaults to the dataset's class count.

    Raises:
      DataFormatError: missing file or keys, corrupt archive, wrong rank or shape, NaN/inf, bad labels.
    """
    path = pathlib.Path(path)
    layout = layouts.get_dataset(dataset)
    data = _read_npz(path)
    missing = [k for k in ("clips", "classes") if k not in data]
    if missing:
        raise DataFormatError(f"{path}: missing key(s) {missing}; found {sorted(data)}")
    clips, labels = data["clips"], data["classes"]
    if not layout.codec.accepts(clips.shape):
        raise DataFormatError(
            f"{path}: {dataset} clips must have shape {layout.codec.shape_text(layout.num_persons)}, got {clips.shape}")
    if clips.shape[0] == 0:
        raise DataFormatError(f"{path}: the file holds no samples")
    if not np.issubdtype(clips.dtype, np.floating):
        raise DataFormatError(f"{path}: clips must be floating point, got dtype {clips.dtype}")
    validate_clips(clips_to_common(clips, dataset), str(path), num_persons=layout.num_persons)
    validate_labels(labels, clips.shape[0], num_classes or layout.num_classes, str(path))
    return clips, labels


def load_dataset_file(path, dataset: str, *, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loads a dataset file as ``(x, labels)``: x float32 (N, 3, T, 25, M), labels int64 (N,).

    Exactly the batches upstream ``CDataset``/``NTUDataset`` yield (checked against the data-format fixtures).
    Raises DataFormatError as :func:`read_raw` does.
    """
    clips, labels = read_raw(path, dataset, num_classes=num_classes)
    return clips_to_common(clips, dataset), labels.astype(np.int64)


def load_array(path, *, num_persons: int | None = None) -> np.ndarray:
    """Loads a ``.npy`` batch already in the common layout (N, 3, T, 25, M), validated, as float32."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataFormatError(f"{path}: not a readable .npy array (truncated or corrupt?): {err}") from err
    validate_clips(x, str(path), num_persons=num_persons)
    return x.astype(np.float32)


def process_umask() -> int:
    mask = os.umask(0)  # the only way to read it; restored at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yields a temporary path beside ``path``; renames it onto ``path`` only if the block succeeds. The file gets
    the permissions any other tool would give it under the process umask (``mkstemp`` alone leaves 0600)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~process_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_raw(path, clips: np.ndarray, classes: np.ndarray) -> pathlib.Path:
    """Writes an npz with exactly the keys ``clips`` and ``classes`` (compressed), atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, clips=clips, classes=np.asarray(classes, dtype=np.int64))
    return pathlib.Path(path)


def save_dataset_file(path, x: np.ndarray, labels: np.ndarray, dataset: str) -> pathlib.Path:
    """Writes ``(x, labels)`` (common layout) as a ``dataset`` file with keys ``clips``/``classes``, atomically.

    Stored in the codec's ``stored_dtype``: HDM05 clips as float64 like the BEAT files, NTU clips as float32
    (upstream does not cast them).
    """
    layout = layouts.get_dataset(dataset)
    x, labels = np.asarray(x), np.asarray(labels)
    validate_clips(x, f"data for {path}", num_persons=layout.num_persons)
    validate_labels(labels, x.shape[0], layout.num_classes, f"labels for {path}")
    clips = common_to_clips(x, dataset).astype(layout.codec.stored_dtype, copy=False)
    return write_raw(path, clips, labels)
