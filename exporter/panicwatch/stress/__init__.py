"""`panicwatch stress`: the classic NFS lockup reproducer, bounded and measured.

The reproducer it replaces is eight shell loops, ``for f in /mnt/nfs/spool/*; do stat "$f";
done &``. On a sick mount they pile up in the kernel and never come back, and nobody learns how
fast the mount answered before it froze. Here N daemon threads make the same calls and time each
one, and the main thread only waits: at ``--duration`` (or on Ctrl-C or SIGTERM) it prints the
summary and returns even if every worker is stuck in the kernel. Stuck daemon threads stay
stuck; the process exits around them.

The run itself is a forked child (see :func:`panicwatch.stress.supervisor.supervised`): a call
stuck where even SIGKILL cannot end it (a FUSE request its server has read; a few NFS paths) keeps
a process from ever being reaped and its stdout open, so the parent relays the child's output,
takes its exit code from a pipe of its own and exits: the shell prompt comes back right after the
summary.

The modules, one job each:

- ``ops``: what a worker does to one path (``--op``) and which entries the walk hands it.
- ``latency``: the latency histogram and what is read from it: buckets, percentiles, merging.
- ``run``: the walk, the workers, the deadline and the signals: ``execute(plan)`` gives a summary.
- ``summary``: what a run found, its exit code, and the summary and progress text.
- ``supervisor``: the forked child that this process never waits on.
- ``command``: ``run_stress``, the command itself: settings to plan, supervised run, output.
"""

from panicwatch.stress.command import run_stress

__all__ = ["run_stress"]
