"""A tiny test protocol for Python test files, the same as the C unit tests':
`python3 FILE --list` prints the test names, `python3 FILE NAME` runs one
(exit 0 pass, 77 skip, anything else fail).  Tests are functions named
test_*.  Use `check(cond, msg)` or plain asserts."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TINYVMI = os.path.join(BUILD, "bin", "tinyvmi")
SKIP = 77


class Skip(Exception):
    """Raised to skip a test (with a reason)."""


def run(args, **kw):
    """Runs a command, returning CompletedProcess with text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(args, **kw)


def tinyvmi(*args, **kw):
    return run([TINYVMI, *map(str, args)], **kw)


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def main(namespace):
    tests = {k[5:]: v for k, v in namespace.items()
             if k.startswith("test_") and callable(v)}
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(sorted(tests)))
        return
    names = sys.argv[1:] or sorted(tests)
    failed = 0
    for name in names:
        if name not in tests:
            print(f"no test named {name}", file=sys.stderr)
            sys.exit(2)
        try:
            tests[name]()
        except Skip as e:
            print(f"SKIP {name}: {e}")
            if len(names) == 1:
                sys.exit(SKIP)
        except Exception as e:  # report and count every kind of failure
            import traceback
            traceback.print_exc()
            print(f"FAIL {name}: {e}", file=sys.stderr)
            failed += 1
    sys.exit(1 if failed else 0)
