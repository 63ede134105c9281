"""Run the example's tests from a checkout without installing it: its package directory goes on sys.path."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
