"""Zip archives of ``.npy`` arrays (the explainer's ``.npz``, skops' model file) read within
sizes checked before anything is decompressed: a small hostile file cannot make the loader
allocate more than its entries declare, nor more than :func:`unpacked_limit`."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np

from scoring.core.settings import integer_setting

# the most one file's entries may declare, in total, once decompressed (docs/security.md),
# unless the operator sets UNPACKED_SETTING
MAX_UNPACKED_BYTES = 2 << 30
UNPACKED_SETTING = "SCORING_MAX_UNPACKED_BYTES"
# decompressed in steps of this size, so a lying size costs at most one step
_CHUNK = 1 << 20
# compression methods that decompress step by step (bzip2 and lzma expand a step unbounded)
_STEPWISE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def unpacked_limit() -> int:
    """The most bytes one file's entries may declare once decompressed: the operator's
    ``SCORING_MAX_UNPACKED_BYTES`` (a positive integer) when set, else
    :data:`MAX_UNPACKED_BYTES`; never anything a file says. ``RuntimeError`` naming the
    setting for any other value."""
    limit = integer_setting(UNPACKED_SETTING, "bytes", digits=15)
    return MAX_UNPACKED_BYTES if limit is None else limit


class ArrayArchive:
    """A zip of ``.npy`` entries, each read on request: ``ValueError`` naming the entry for
    anything but a plain array whose header agrees with the entry's declared size, or
    when the entries read pass ``limit`` bytes in total (default
    :func:`unpacked_limit`)."""

    def __init__(self, data: bytes, limit: int | None = None) -> None:
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ValueError(f"not a zip archive ({type(exc).__name__}: {exc})") from None
        self._names = set(self.zip.namelist())
        self.limit = unpacked_limit() if limit is None else limit
        self.unpacked = 0

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def read_array(self, name: str) -> np.ndarray:
        """The array of entry ``name`` (a ``.npy``), never pickled objects."""
        info = self._entry(name)
        with self.zip.open(info) as f:
            try:
                shape, fortran, dtype = _npy_header(f)
            except ValueError as exc:
                raise ValueError(f"entry {name!r} is not a .npy array: {exc}") from None
            if dtype.hasobject:
                raise ValueError(f"entry {name!r} holds pickled objects")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes != info.file_size - f.tell():
                raise ValueError(f"entry {name!r} declares an array of shape {shape} "
                                 f"({nbytes} bytes) in {info.file_size - f.tell()} bytes")
            buffer = _read_exactly(f, nbytes, name)
        if nbytes == 0:
            return np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        flat = np.frombuffer(buffer, dtype=dtype)
        return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)

    def check_all(self) -> None:
        """Read every entry once, in bounded steps (sizes, CRC, ``.npy`` headers), before a
        library that reads entries whole (skops) gets the archive."""
        for name in self.zip.namelist():
            if name.endswith(".npy"):
                self.read_array(name)
                continue
            info = self._entry(name)
            with self.zip.open(info) as f:
                _read_exactly(f, info.file_size, name)

    def _entry(self, name: str) -> zipfile.ZipInfo:
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise ValueError(f"no entry {name!r}") from None
        if info.compress_type not in _STEPWISE:
            raise ValueError(f"entry {name!r} uses compression method {info.compress_type}; "
                             "only stored and deflated entries are read")
        self.unpacked += info.file_size
        if self.unpacked > self.limit:
            raise ValueError(f"its entries declare more than {self.limit} bytes once "
                             f"decompressed (the limit, {UNPACKED_SETTING}; entry {name!r} "
                             "passes it)")
        return info


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"unknown .npy version {version}")


def _read_exactly(f, nbytes: int, name: str) -> bytearray:
    """``nbytes`` from ``f`` in steps of :data:`_CHUNK` (zipfile checks the CRC at the end)."""
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    done = 0
    try:
        while done < nbytes:
            step = f.read(min(_CHUNK, nbytes - done))
            if not step:
                break
            view[done:done + len(step)] = step
            done += len(step)
        extra = f.read(1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"entry {name!r} is damaged ({type(exc).__name__}: {exc})") from None
    if done != nbytes or extra:
        raise ValueError(f"entry {name!r} does not hold the {nbytes} bytes it declares")
    return buffer
