"""``python -m homing.conformance``: the conformance command without the rest of the CLI."""

from .command import conformance

conformance(prog_name="python -m homing.conformance")
