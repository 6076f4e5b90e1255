"""Set resource limits on itself, then become the real child: ``python -I -S THIS SPEC -- ARGV``.

Runs inside the sandbox (after bubblewrap made the user namespace), because RLIMIT_NPROC set
before bubblewrap would also be checked against the host uid's process count. SPEC is
``NAME=SOFT:HARD,...`` with NAME a ``resource.RLIMIT_*`` suffix. Standard library only: it runs
with ``-S`` and must not import the grader package.
"""

import os
import resource
import sys


def main(argv):
    spec, sep, command = argv[1], argv[2], argv[3:]
    if sep != "--" or not command:
        sys.exit("usage: _apply_limits.py NAME=SOFT:HARD,... -- ARGV")
    for item in filter(None, spec.split(",")):
        name, values = item.split("=")
        soft, hard = (int(v) for v in values.split(":"))
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (soft, hard))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
