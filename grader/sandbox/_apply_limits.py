"""Set resource limits on itself, then become the child: ``python -I -S THIS [--init] SPEC -- ARGV``.

SPEC is ``NAME=SOFT:HARD,...`` with NAME a ``resource.RLIMIT_*`` suffix. Standard library only:
it runs with ``-S`` and must not import the grader package.

With ``--init`` (in the sandbox, started by ``bwrap --as-pid-1``) this process is the sandbox's
process 1 and stays so: it sets the limits, makes itself non-dumpable, forks ARGV as process 2,
reaps every orphan, and exits with ARGV's status (128 + N for a death by signal N, as bubblewrap's
own init would). Every process in the sandbox descends from it, so each carries every limit,
RLIMIT_NPROC included (set here because, in the user namespace, it counts only the sandbox's
processes); and the one process the child did not start can be neither traced nor written
through ``/proc/1/mem``.
"""

import ctypes
import os
import resource
import signal
import sys

PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def main(argv):
    init = argv[1:2] == ["--init"]
    spec, sep, command = argv[1 + init], argv[2 + init], argv[3 + init:]
    if sep != "--" or not command:
        sys.exit("usage: _apply_limits.py [--init] NAME=SOFT:HARD,... -- ARGV")
    for item in filter(None, spec.split(",")):
        name, values = item.split("=")
        soft, hard = (int(v) for v in values.split(":"))
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (soft, hard))
    if not init:
        os.execv(command[0], command)
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.exit("_apply_limits.py: prctl(PR_SET_DUMPABLE) failed")
    # Python's KeyboardInterrupt handler would let the child end process 1 with a SIGINT; with
    # the default action, process 1 of a PID namespace ignores signals sent from inside it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    child = os.fork()
    if child == 0:
        try:
            os.execv(command[0], command)  # execve makes the child dumpable again, as usual
        except OSError as exc:
            print(f"_apply_limits.py: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        os._exit(127)
    os._exit(reap(child))  # nothing to flush or finalise: end the sandbox as soon as the child


def reap(child: int) -> int:
    """Wait for every process until ``child`` ends; its exit status, shell style."""
    while True:
        pid, status = os.wait()
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    main(sys.argv)
