"""``python -m autotune`` and the ``autotune`` console script: ``cli.main``, imported here.

Importing the CLI takes a few tenths of a second; a Ctrl-C then (or while the arguments are
parsed) is the same one line and exit status 130 as one later, not a traceback.
"""
import sys


def entry() -> int:
    try:
        from .cli import main

        return main()
    except KeyboardInterrupt:
        print("autotune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry())
