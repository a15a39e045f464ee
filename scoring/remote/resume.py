"""When ``scoring explain --output DIR`` may reuse the part-files already in ``DIR``.

``DIR/_manifest.json`` records what its part-files explain: the input's content (rows per
partition and a SHA-256 of every partition's column names, types and values, as Dask read
them), the bundle (tag, model fingerprint, explainer) and the settings that change the
output (``get_raw``, ``partition_rows``). A part-file's name, size or time says nothing
about which rows it explains, so only a manifest that matches all of them lets a run keep
its part-files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scoring.core.counts import counted

if TYPE_CHECKING:
    import pyarrow as pa

MANIFEST = "_manifest.json"
GLOBAL_FILE = "_global_explanation.json"
FORMAT = "scoring.batch"
FORMAT_VERSION = 2
_PART = re.compile(r"part-\d{5}\.parquet")
_REFUSE = "; use a new output directory or empty this one"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def partition_identity(frame: pd.DataFrame) -> tuple[int, str]:
    """The row count of one input partition and the SHA-256 of its column names, dtypes and
    values (Arrow buffers, sliced to the partition): computed where the rows are counted,
    so the input is read once for both."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        array = _arrow_array(column)
        digest.update(json.dumps([str(name), str(column.dtype), str(array.type), array.offset,
                                  len(array), array.null_count]).encode())
        for buffer in array.buffers():
            if buffer is None:
                digest.update(b"none")
            else:
                digest.update(len(buffer).to_bytes(8, "little"))
                digest.update(buffer)
    return len(frame), digest.hexdigest()


def _arrow_array(column: pd.Series) -> pa.Array:
    """``column`` as one Arrow array holding only its own values (a slice of a larger table
    copied out, categories decoded). Columns of mixed Python objects, which Arrow cannot
    type, are hashed as the type and ``repr`` of each value."""
    import pyarrow as pa

    try:
        values = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        values = pa.array([f"{type(v).__module__}.{type(v).__qualname__}:{v!r}"
                           for v in column])
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if not chunks:
        return pa.array([], type=values.type)
    if pa.types.is_dictionary(values.type):
        chunks = [chunk.dictionary_decode() for chunk in chunks]
    return pa.concat_arrays(chunks)


def input_identity(partitions: list[tuple[int, str]]) -> dict:
    """What the manifest records of the input: its rows, per partition, and one SHA-256 over
    the partitions' in order."""
    digest = hashlib.sha256()
    for rows, partition_digest in partitions:
        digest.update(f"{rows}:{partition_digest}\n".encode())
    lengths = [rows for rows, _ in partitions]
    return {"rows": sum(lengths), "lengths": lengths, "sha256": digest.hexdigest()}


def new_manifest(bundle: dict, settings: dict, input_: dict, source: str) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "bundle": bundle,
            "settings": settings, "input": input_, "source": source}


def check_output(out: Path, bundle: dict, settings: dict) -> dict | None:
    """Refuse ``out`` (``ValueError``) when a run with this ``bundle`` and these
    ``settings`` (as :func:`new_manifest` records them) must not write there: it holds
    explanations of another bundle (tag, model fingerprint or explainer) or of other
    settings, which a rerun must not replace without being told, or part-files with no
    manifest (or one this version does not read), of which nothing says what they explain.
    Needs neither the input nor a cluster: ``scoring explain`` checks before it starts one.
    Returns the manifest already in ``out`` (``None`` when there is none)."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise ValueError(f"{out} is not a directory")
    path = out / MANIFEST
    if path.exists():
        previous = _read_manifest(path)
        wanted = {"bundle": bundle, "settings": settings}
        changed = [words for key, words in (("bundle", "another bundle"),
                                            ("settings", "other settings"))
                   if previous[key] != wanted[key]]
        if changed:
            raise ValueError(f"{out} holds explanations written with {' and '.join(changed)} "
                             f"({_difference(previous, wanted)}){_REFUSE}")
        return previous
    if any(_PART.fullmatch(p.name) for p in out.iterdir()):
        raise ValueError(f"{out} holds part-files but no {MANIFEST}: nothing says which rows "
                         f"they explain{_REFUSE}")
    return None


def prepare_output(out: Path, manifest: dict) -> str:
    """Make ``out`` ready for the run ``manifest`` describes; return why part-files already
    there were deleted ("" when there were none, or when they are kept).

    - same bundle, settings and input: resumed, the part-files are kept;
    - same bundle and settings, another input (other content, even at the same row count):
      the command was run again on data that changed, so its part-files are deleted and
      every partition recomputed;
    - refused as :func:`check_output` refuses.
    """
    previous = check_output(out, manifest["bundle"], manifest["settings"])
    for stale in out.glob(".part-*.tmp-*"):  # left by a run killed mid-write
        stale.unlink(missing_ok=True)
    reason = ""
    if previous is not None:
        if previous["input"] == manifest["input"]:
            return ""
        parts = [p for p in out.iterdir() if _PART.fullmatch(p.name)]
        before, now = previous["input"], manifest["input"]
        reason = (f"{out} holds explanations of other input rows ({previous.get('source')!r}: "
                  f"{before.get('rows')} rows, sha256 {str(before.get('sha256'))[:12]}; now "
                  f"{manifest['source']!r}: {now['rows']} rows, sha256 {now['sha256'][:12]}): "
                  f"deleted {counted(len(parts), 'part-file')}, recomputing every partition")
        for part in parts:
            part.unlink()
        (out / GLOBAL_FILE).unlink(missing_ok=True)
    tmp = out / f".{MANIFEST}.tmp-{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)
    return reason


def _read_manifest(path: Path) -> dict:
    try:
        previous = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON ({exc}){_REFUSE}") from None
    if not isinstance(previous, dict) or previous.get("format") != FORMAT or previous.get(
            "format_version") != FORMAT_VERSION or not all(
            isinstance(previous.get(key), dict) for key in ("bundle", "settings", "input")):
        raise ValueError(f"{path} is not a manifest of format {FORMAT} version "
                         f"{FORMAT_VERSION} (older versions did not record the input's "
                         f"content){_REFUSE}")
    return previous


def _difference(previous: dict, manifest: dict) -> str:
    """``key: before -> now`` for every recorded value that differs."""
    return ", ".join(f"{key} {previous[group].get(key)!r} -> {value!r}"
                     for group in ("bundle", "settings")
                     for key, value in manifest[group].items()
                     if previous[group].get(key) != value)
