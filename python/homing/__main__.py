"""``python -m homing``: the same command line as the ``homing`` script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="homing")
