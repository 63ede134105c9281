"""A tiny writer of plain EDF files, used only to build native-format test fixtures.

``mne.export.export_raw(fmt="edf")`` works offline here (through ``edfio``) but
always writes EDF+C with an annotation signal; the TUH and Mumtaz releases are
plain EDF (blank reserved field), so the fixtures are written by hand to match
them byte for byte in layout: 256-byte header, 256 bytes per signal, int16
little-endian samples, one data record per ``record_s`` seconds.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np


def _field(value: object, width: int) -> bytes:
    text = str(value)
    if len(text) > width:
        raise ValueError(f"EDF header field {text!r} is longer than {width} characters")
    return text.ljust(width).encode("ascii")


def write_edf(
    path: str | Path,
    data_uv: np.ndarray,
    sfreq: float,
    ch_names: Sequence[str],
    *,
    patient: str = "X X X X",
    recording: str = "Startdate X X X X",
    phys_dim: str = "uV",
    record_s: float = 1.0,
    start: tuple[str, str] = ("01.01.00", "00.00.00"),
) -> Path:
    """Write ``data_uv`` (channels, samples) in microvolts as a plain EDF file; return its path."""
    data = np.asarray(data_uv, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] != len(ch_names):
        raise ValueError(f"data must be (len(ch_names), samples), got {data.shape} for {len(ch_names)} names")
    spr = sfreq * record_s
    if abs(spr - round(spr)) > 1e-9:
        raise ValueError(f"sfreq * record_s must be an integer, got {spr}")
    spr = int(round(spr))
    n_records = data.shape[1] // spr
    if n_records * spr != data.shape[1]:
        raise ValueError(f"{data.shape[1]} samples is not a whole number of {spr}-sample records")
    n_sig = len(ch_names)
    dig_min, dig_max = -32768, 32767
    # symmetric integer physical ranges always fit the 8-character fields
    phys_max = np.array([float(math.ceil(np.abs(row).max() + 1.0)) for row in data])
    phys_min = -phys_max
    gain = (phys_max - phys_min) / (dig_max - dig_min)
    digital = np.round((data - phys_min[:, None]) / gain[:, None] + dig_min)
    digital = np.clip(digital, dig_min, dig_max).astype("<i2")

    header = b"".join([
        _field("0", 8), _field(patient, 80), _field(recording, 80),
        _field(start[0], 8), _field(start[1], 8), _field(256 * (n_sig + 1), 8),
        _field("", 44), _field(n_records, 8), _field(f"{record_s:g}", 8), _field(n_sig, 4),
    ])
    columns = [
        [_field(n, 16) for n in ch_names],
        [_field("", 80)] * n_sig,
        [_field(phys_dim, 8)] * n_sig,
        [_field(f"{v:g}", 8) for v in phys_min],
        [_field(f"{v:g}", 8) for v in phys_max],
        [_field(dig_min, 8)] * n_sig,
        [_field(dig_max, 8)] * n_sig,
        [_field("", 80)] * n_sig,
        [_field(spr, 8)] * n_sig,
        [_field("", 32)] * n_sig,
    ]
    header += b"".join(b"".join(col) for col in columns)
    # records hold each signal's block of samples one after the other
    body = digital.reshape(n_sig, n_records, spr).transpose(1, 0, 2).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body)
    return path


def quantization_step(data_uv: np.ndarray) -> np.ndarray:
    """Per-channel resolution (uV) that :func:`write_edf` gives ``data_uv``; tests use it as a tolerance."""
    phys_max = np.ceil(np.abs(np.asarray(data_uv, dtype=float)).max(axis=1) + 1.0)
    return 2 * phys_max / 65535.0
