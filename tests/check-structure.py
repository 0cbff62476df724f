#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks the structure doc/architecture.md promises: no two source files
of libwpool/ call each other, no longer cycle of calls between them, and
no source file over 1 500 lines. A call is a use of a non-static
wpool_ function defined, at the start of a line, in another file;
comments do not count."""

import itertools
import os
import re
import sys

MAX_LINES = 1500


def main(root):
    sources = sorted(os.path.join(root, 'libwpool', name) for name in os.listdir(os.path.join(root, 'libwpool'))
                     if name.endswith('.c'))
    texts = {os.path.basename(path): re.sub(r'/\*.*?\*/', '', open(path).read(), flags=re.S) for path in sources}
    defined = {}
    for name, text in texts.items():
        for found in re.finditer(r'^(wpool_\w+) \(', text, re.M):
            defined.setdefault(found.group(1), name)
    calls = {name: {defined[found.group(1)] for found in re.finditer(r'\b(wpool_\w+)\s*\(', text)
                    if defined.get(found.group(1), name) != name}
             for name, text in texts.items()}

    problems = ['{} and {} call each other'.format(a, b)
                for a, b in itertools.combinations(sorted(calls), 2) if b in calls[a] and a in calls[b]]

    state = {}

    def visit(name, path):
        state[name] = 'open'
        for callee in sorted(calls[name]):
            if state.get(callee) == 'open':
                cycle = path[path.index(callee):] + [callee]
                if len(cycle) > 3:
                    problems.append('a cycle of calls: ' + ' -> '.join(cycle))
            elif callee not in state:
                visit(callee, path + [callee])
        state[name] = 'done'

    for name in sorted(calls):
        if name not in state:
            visit(name, [name])

    for path in sources + sorted(os.path.join(root, 'libwpool', name) for name in os.listdir(os.path.join(root, 'libwpool'))
                                 if name.endswith('.h')):
        with open(path) as source:
            n_lines = sum(1 for _ in source)
        if n_lines > MAX_LINES:
            problems.append('{} has {} lines (at most {})'.format(os.path.relpath(path, root), n_lines, MAX_LINES))

    for problem in problems:
        print(problem)
    print('{} files, {} calls between them: {}'.format(len(calls), sum(len(c) for c in calls.values()),
                                                       'not as doc/architecture.md says' if problems else 'ok'))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
