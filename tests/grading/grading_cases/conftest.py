"""The battery problem set is graded by tests/test_grading_battery.py, not executed by nbval."""

collect_ignore_glob = ["*.ipynb"]
