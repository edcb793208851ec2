"""The conformance suite: language-neutral vectors that every homing client runs.

The vectors live in the repository's ``conformance/`` directory and are
shipped inside this package (``data/``) so that ``homing conformance`` can
check any Redis a user points it at. See ``conformance/README.md``.
"""
