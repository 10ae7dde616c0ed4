"""Print how many cases the fuzzer ran, after the test summary."""
from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    import sys

    module = sys.modules.get("tests.fuzz.test_schemathesis")
    line = module.summary_line() if module else None
    if line:
        terminalreporter.write_line(line)
