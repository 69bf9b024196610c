"""Build, check and time the restricted language model that :mod:`herald.enrichment.language` maps.

``python -m herald.enrichment.language_model`` loads py3langid's packaged model
(``py3langid/data/model.npz.xz``), restricts it to :data:`~herald.enrichment.language.LANGUAGES`
with py3langid's own ``set_languages`` and saves what a ``LanguageIdentifier`` then uses in
``shared/herald/enrichment/data/``: the header ``langid_model.json`` (labels, priors, each table's
format and shape) and each table as a raw little-endian file ``langid_<table>.bin``, which
:func:`herald.enrichment.language.load_identifier` maps without numpy. numpy and py3langid are needed
here, at build time, not at run time. Run it again after changing ``LANGUAGES`` or upgrading
py3langid; ``--check`` exits 1 when the files differ from what it would write. ``--measure [RUNS]``
times the first detection and reads the resident memory after it,
each in a fresh process, with py3langid's packaged model restricted at run time ("packaged") and with
these files ("mapped"), and prints the medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from herald.enrichment.language import LANGUAGES, MODEL_FILES, MODEL_TABLES, REGENERATE, model_file

_PIECE = 16  # entries of a transition row per piece (see derive)

#: The byte format (``struct`` syntax, little-endian) of each table's file.
FORMATS: dict[str, str] = {"ptc": "<H", "chunks": "<I", "rows": "<I", "states": "<I", "output": "<i"}
_NUMPY_TYPES = {"<H": "<u2", "<I": "<u4", "<i": "<i4"}
#: ``ptc`` is saved as ``-nb_ptc * PTC_SCALE``: py3langid's float16 log-probabilities, all in
#: [-16, -2), are multiples of 2**-9, so this is exact (``fixed_point`` checks it).
PTC_SCALE = 512


def fixed_point(ptc: Any) -> Any:
    """``-ptc * PTC_SCALE`` as uint16, or ``ValueError`` if that would not be exact."""
    import numpy as np

    values = -np.asarray(ptc, dtype=np.float64) * PTC_SCALE
    if not (
        np.all(values == np.floor(values)) and values.min(initial=0) >= 0 and values.max(initial=0) < 1 << 16
    ):
        raise ValueError(f"nb_ptc is not exact in fixed point at scale {PTC_SCALE}; choose another scale")
    return values.astype(np.uint16)


def packaged_identifier() -> Any:
    """py3langid's identifier from its packaged model, restricted to ``LANGUAGES`` at run time."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def derive() -> dict[str, Any]:
    """The restricted model's arrays (numpy), from py3langid's packaged model.

    ``ptc``, ``pc``, ``classes`` and ``output`` are py3langid's, restricted. The transition table
    (one 256-entry row of next states per distinct row, ``tk_row`` giving each state's row) is cut
    in pieces of sixteen entries and each distinct piece kept once, in sorted order: ``chunks`` holds
    the pieces end to end, ``rows`` the offset in ``chunks`` of each row's sixteen pieces, ``states``
    the offset in ``rows`` of each state's row.
    """
    import numpy as np

    identifier = packaged_identifier()
    table = np.array(identifier.tk_nextmove).reshape(-1, _PIECE)
    pieces, piece_of = np.unique(table, axis=0, return_inverse=True)
    offsets = {
        "chunks": pieces.ravel(),
        "rows": piece_of.ravel() * _PIECE,
        "states": np.array(identifier.tk_row, dtype=np.int64) * (256 // _PIECE),
    }
    for name, values in offsets.items():
        if values.max(initial=0) >= 1 << 32:
            raise ValueError(f"{name} no longer fits 32 bits")
    return {
        "ptc": np.ascontiguousarray(identifier.nb_ptc),
        "pc": np.ascontiguousarray(identifier.nb_pc),
        "classes": list(identifier.nb_classes),
        **{name: values.astype(np.uint32) for name, values in offsets.items()},
        "output": np.array(identifier.tk_output, dtype=np.int32),
    }


def encode(arrays: dict[str, Any]) -> dict[str, bytes]:
    """The content of each of :data:`~herald.enrichment.language.MODEL_FILES`: the JSON header
    (``model``) and each table's raw little-endian bytes."""
    import numpy as np
    from py3langid import __version__ as py3langid_version

    files: dict[str, bytes] = {}
    tables: dict[str, Any] = {}
    for name in MODEL_TABLES:
        values = fixed_point(arrays[name]) if name == "ptc" else arrays[name]
        values = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[FORMATS[name]])
        tables[name] = {"format": FORMATS[name], "shape": list(values.shape)}
        if name == "ptc":
            tables[name] |= {"scale": PTC_SCALE, "max": int(values.max(initial=0))}
        files[name] = values.tobytes()
    header = {
        "source": f"py3langid {py3langid_version}, its packaged model restricted to LANGUAGES ({REGENERATE})",
        "classes": [str(label) for label in arrays["classes"]],
        "pc": [float(p) for p in np.asarray(arrays["pc"], dtype=np.float32).tolist()],
        "tables": tables,
    }
    files["model"] = (json.dumps(header, indent=1) + "\n").encode("utf-8")
    return {name: files[name] for name in MODEL_FILES}


def stale() -> list[str]:
    """Names of the files whose content differs from what :func:`derive` gives now (or are missing)."""
    wanted = encode(derive())
    return [n for n in MODEL_FILES if not model_file(n).is_file() or model_file(n).read_bytes() != wanted[n]]


def write() -> list[Path]:
    """Derive the model and save its files under ``data/``; returns the paths written."""
    paths = []
    for name, content in encode(derive()).items():
        path = model_file(name)
        path.write_bytes(content)
        paths.append(path)
    return paths


_SAMPLE = "La distribution de vivres commence demain matin au bloc C, apportez votre carte"

_CHILD = """
import sys, time
start = time.perf_counter()
import herald.enrichment.language as language
if sys.argv[1] == "packaged":
    from herald.enrichment.language_model import packaged_identifier
    language._identifier = packaged_identifier()
guess = language.detect(sys.argv[2])
elapsed = time.perf_counter() - start
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
kib = [int(status[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")]
print(elapsed, *kib, guess.code)
"""


def measure(runs: int = 5) -> dict[str, dict[str, float]]:
    """Medians over ``runs`` fresh processes per variant (alternating): the first ``detect`` in seconds
    (imports included), then, read right after it, in MiB: the resident memory, its peak, and its
    private (anonymous) and file-backed parts (the mapped files are page cache, shared)."""
    samples: dict[str, list[list[float]]] = {"packaged": [], "mapped": []}
    for _ in range(runs):
        for variant, rows in samples.items():
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, variant, _SAMPLE], capture_output=True, text=True, check=True
            )
            *values, code = done.stdout.split()
            if code != "fr":
                raise RuntimeError(f"{variant}: detected {code}")
            rows.append([float(v) for v in values])
    keys = ("first_detect_s", "rss_mib", "peak_rss_mib", "anon_mib", "file_mib")
    scale = (1.0, 1024, 1024, 1024, 1024)
    return {
        variant: {k: statistics.median(row[i] for row in rows) / scale[i] for i, k in enumerate(keys)}
        for variant, rows in samples.items()
    }


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        names = stale()
        for name in names:
            print(f"{model_file(name)} is out of date; regenerate: {REGENERATE}", file=sys.stderr)
        return 1 if names else 0
    if argv[:1] == ["--measure"]:
        runs = int(argv[1]) if len(argv) > 1 else 5
        for variant, medians in measure(runs).items():
            print(
                f"{variant}: first detect {medians['first_detect_s'] * 1000:.0f} ms, "
                f"RSS {medians['rss_mib']:.1f} MiB (peak {medians['peak_rss_mib']:.1f}; "
                f"anonymous {medians['anon_mib']:.1f}, file-backed {medians['file_mib']:.1f}), "
                f"median of {runs} processes"
            )
        return 0
    if argv:
        print(
            "usage: python -m herald.enrichment.language_model [--check | --measure [RUNS]]", file=sys.stderr
        )
        return 2
    for path in write():
        print(f"{path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
