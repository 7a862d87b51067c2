"""Test-wide settings: the graph cache lives in a folder of this session's own, so a test
never reads a graph cached by another run (or by the user)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("EDGEWISE_CACHE_DIR", tempfile.mkdtemp(prefix="edgewise-cache-"))
os.environ.pop("EDGEWISE_NO_CACHE", None)  # tests of the cache count captures
