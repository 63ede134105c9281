"""``python -m eegkd_bench.cli``: the same as the ``eegkd-bench`` console script."""
import sys

from eegkd_bench.cli import main

sys.exit(main())
