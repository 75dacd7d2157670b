"""Print one closing line 'N passed, N failed, N skipped' over several JUnit XML files.

Exit 1 when a file is missing, when any test failed or errored, or when no test ran at all.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    passed = failed = skipped = 0
    for path in paths:
        if not Path(path).exists():
            print(f"{path}: missing (that test run did not happen)")
            return 1
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            tests, fails = int(suite.get("tests", 0)), int(suite.get("failures", 0))
            errors, skips = int(suite.get("errors", 0)), int(suite.get("skipped", 0))
            failed += fails + errors
            skipped += skips
            passed += tests - fails - errors - skips
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
