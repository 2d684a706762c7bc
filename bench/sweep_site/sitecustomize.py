"""Seed sweep in subprocesses: bench/seed_sweep.py puts this folder on PYTHONPATH, so a Python
subprocess a test starts (``inferwatch demo --seed 3``) shifts its seeds like the test process
(tests/seeds.py). Nothing happens without ``INFERWATCH_SEED_SWEEP``."""

import os

if os.environ.get("INFERWATCH_SEED_SWEEP", "").strip():
    try:
        from tests.seeds import install_from_env
    except ImportError:  # another interpreter (a model server's venv) without numpy or the repo
        pass
    else:
        install_from_env()
