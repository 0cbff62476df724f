# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the PyGObject tests share."""

import os


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
