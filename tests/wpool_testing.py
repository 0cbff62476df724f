# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the PyGObject tests share."""

import gc
import os
import time


def children_of(pid):
    """The pids of @pid's child processes, from /proc."""
    children = set()
    for entry in os.listdir('/proc'):
        try:
            with open('/proc/{}/stat'.format(entry)) as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the name: state, ppid.
        if entry.isdigit() and int(fields[1]) == pid:
            children.add(int(entry))
    return children


def _is_resource_tracker(pid):
    try:
        with open('/proc/{}/cmdline'.format(pid)) as cmdline:
            return 'multiprocessing.resource_tracker' in cmdline.read()
    except OSError:
        return False


def workers_left(pid, timeout=5):
    """@pid's child processes, but multiprocessing's resource tracker (its
    own helper, which lives as long as the process that started it), once
    none is left or after @timeout seconds: workers that were told to end
    may take a moment to."""
    deadline = time.monotonic() + timeout
    while True:
        left = {child for child in children_of(pid) if not _is_resource_tracker(child)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def open_memfds(name):
    """This process's descriptors of memfds whose name starts with @name,
    once the objects no longer referenced are gone."""
    gc.collect()
    found = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            if 'memfd:' + name in os.readlink('/proc/self/fd/' + fd):
                found.append(fd)
        except OSError:
            pass
    return found
