"""``python -m gradflow.bench`` == ``gradflow bench``."""
import argparse
import sys

from . import cli


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gradflow.bench", description=cli.__doc__.splitlines()[0])
    cli.add_arguments(p)
    return cli.run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
