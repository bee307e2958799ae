"""Sequence tasks, generated offline from a seed, and character-level text from a file.

- ``adding`` (Hochreiter & Schmidhuber 1997): T steps of (value, marker); the
  target is the sum of the two marked values. Long T tests long-range memory.
- ``copy``: read L symbols, wait ``delay`` blanks, then write the L symbols back.
- ``parity``: is the number of ones in a bit string odd?
- ``text``: predict the next character of a text file (``dataset.path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnexp.data import Data, split_arrays
from nnexp.errors import ConfigError
from nnexp.options import data as options


def adding(n_samples: int = 2000, length: int = 50, val_fraction: float = 0.2, test_fraction: float = 0.0,
           seed: int = 0, tolerance: float = 0.04) -> Data:
    """x (N, T, 2): a uniform value and a 0/1 marker per step; y (N, 1): the sum of the two marked values.

    One marker falls in the first half of the sequence and one in the second, so
    the answer always needs information from far back. An answer within
    ``tolerance`` of the sum counts as right (accuracy); 0.04 is Hochreiter &
    Schmidhuber's criterion. Always answering the mean, 1.0, is right for about 6%.
    """
    options.adding(n_samples=n_samples, length=length, val_fraction=val_fraction, test_fraction=test_fraction,
                   seed=seed, tolerance=tolerance)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n_samples, length))
    half = length // 2
    first = rng.integers(0, half, n_samples)
    second = rng.integers(half, length, n_samples)
    markers = np.zeros((n_samples, length))
    rows = np.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)  # (N, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]  # (N, 1)
    return split_arrays("adding", x, y, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                        tolerance=tolerance)


BLANK, GO = 0, 1  # the copy task's two control tokens; symbols are 2 .. n_symbols + 1


def copy(n_samples: int = 2000, length: int = 8, delay: int = 10, n_symbols: int = 8, val_fraction: float = 0.2,
         test_fraction: float = 0.0, seed: int = 0) -> Data:
    """Tokens (N, 2L + delay): L symbols, ``delay`` blanks, GO, L - 1 blanks; targets per step: blanks, then the symbols."""
    options.copy(n_samples=n_samples, length=length, delay=delay, n_symbols=n_symbols, val_fraction=val_fraction,
                 test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(2, n_symbols + 2, (n_samples, length))
    steps = 2 * length + delay
    x = np.full((n_samples, steps), BLANK, dtype=np.int64)
    x[:, :length] = symbols
    x[:, length + delay] = GO
    y = np.full((n_samples, steps), BLANK, dtype=np.int64)
    y[:, length + delay:] = symbols  # answer from the GO token on
    vocab = n_symbols + 2
    return split_arrays("copy", x, y, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                        num_classes=vocab, vocab_size=vocab, per_step=True)


def parity(n_samples: int = 2000, length: int = 16, val_fraction: float = 0.2, test_fraction: float = 0.0,
           seed: int = 0) -> Data:
    """Bit strings as tokens (N, T) in {0, 1}; label 1 when the number of ones is odd."""
    options.parity(n_samples=n_samples, length=length, val_fraction=val_fraction, test_fraction=test_fraction,
                   seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n_samples, length)).astype(np.int64)
    y = (x.sum(axis=1) % 2).astype(np.int64)
    return split_arrays("parity", x, y, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                        num_classes=2, vocab_size=2)


def text(path: str, seq_len: int = 64, val_fraction: float = 0.1, test_fraction: float = 0.0,
         max_chars: int | None = None, seed: int = 0) -> Data:
    """Character-level next-token prediction: windows of ``seq_len`` characters, targets shifted by one.

    The vocabulary is the file's own characters (sorted). Windows do not
    overlap; the val/test windows are drawn at random with ``seed``.
    """
    options.text(path=path, seq_len=seq_len, val_fraction=val_fraction, test_fraction=test_fraction,
                 max_chars=max_chars, seed=seed)
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"dataset.path={path}: no such file ({file.resolve()}); point it to a UTF-8 text file")
    content = _utf8_text(file, path)
    if max_chars:
        content = content[:max_chars]
    n_windows = (len(content) - 1) // seq_len
    if n_windows < 3:
        raise ConfigError(f"dataset.path={path}: {len(content)} characters make fewer than 3 windows of "
                          f"seq_len={seq_len}; use a longer file or a smaller dataset.seq_len")
    chars = sorted(set(content))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((index[c] for c in content[: n_windows * seq_len + 1]), dtype=np.int64)
    starts = np.arange(n_windows) * seq_len
    x = np.stack([ids[s:s + seq_len] for s in starts])  # (N, T)
    y = np.stack([ids[s + 1:s + seq_len + 1] for s in starts])  # (N, T): the next character
    return split_arrays(f"text:{file.name}", x, y, val_fraction=val_fraction, test_fraction=test_fraction,
                        seed=seed, num_classes=len(chars), vocab_size=len(chars), per_step=True, next_token=True)


def _utf8_text(file: Path, path: str) -> str:
    """The file's text; a ConfigError naming the first byte that is not UTF-8 text (a NUL: binary data)."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"dataset.path={path}: cannot read {file} ({exc.strerror or exc})") from None
    nul = data.find(b"\0")  # valid UTF-8, but no text file holds one
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start if nul < 0 else min(nul, exc.start)
    else:
        if nul < 0:
            return content
        bad = nul
    raise ConfigError(f"dataset.path={path}: byte 0x{data[bad]:02x} at offset {bad} is not UTF-8 text"
                      f"{' (a NUL: binary data)' if bad == nul else ''}; the file must be UTF-8 text")
