#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fails, naming file:line, on what gi-docgen would not turn into a link in
the doc comments g-ir-scanner reads, and on unlabelled code fences.

usage: check-doc-comments.py --gir G.gir [--gir …] FILE…

In the /** */ blocks of the .c and .h FILEs, gtk-doc's forms are refused:
a #Type sigil, #Type:property and #Type::signal (with or without the #), a
function() that names a symbol of one of the GIRs, and |[ ]| code blocks;
gi-docgen shows them as plain code, where [class@Wpool.Pool],
[method@Wpool.Pool.map] and ``` fences link and highlight. Constants stay
%NULL, %WPOOL_ERROR_FAILED: gi-docgen renders them as code, as GLib's.

In every FILE, Markdown or doc comment, a ``` or ~~~ fence that opens a
code block must name its language (```c, ```sh, ```text …).
"""

import re
import sys
import xml.etree.ElementTree as ET

CORE = '{http://www.gtk.org/introspection/core/1.0}'
C = '{http://www.gtk.org/introspection/c/1.0}'
GLIB = '{http://www.gtk.org/introspection/glib/1.0}'

FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})\s*(.*)$')
TYPE_SIGIL = re.compile(r'#([A-Z][A-Za-z0-9]+)(::?[a-z][a-z0-9_-]*)?')
MEMBER = re.compile(r'(?<![\w.#@])([A-Z][A-Za-z0-9]+)(::?)([a-z][a-z0-9_-]*)')
FUNCTION = re.compile(r'(?<![\w.@])([a-z_][a-z0-9_]*)\s*\(\)')
GTKDOC_BLOCK = re.compile(r'\|\[|\]\|')
# The first line of a block names what it documents: `wpool_pool_map:`,
# `WpoolPool:n-jobs:`, `WpoolPool::progress:`, maybe with annotations.
IDENTIFIER_LINE = re.compile(r'^[\w:-]+:\s*(\(.*\))?\s*$')


def load_symbols(paths):
    """What each C name of the GIRs links as: types by their C type,
    functions by their C identifier."""
    kinds = {'class': 'class', 'interface': 'iface', 'record': 'struct', 'union': 'struct',
             'enumeration': 'enum', 'bitfield': 'flags', 'callback': 'callback', 'alias': 'alias'}
    members = {'constructor': 'ctor', 'method': 'method', 'function': 'func'}
    types, functions = {}, {}
    for path in paths:
        namespace = ET.parse(path).getroot().find(CORE + 'namespace')
        ns = namespace.get('name')
        for node in namespace:
            tag = node.tag[len(CORE):]
            if tag == 'function':
                functions.setdefault(node.get(C + 'identifier'), f'func@{ns}.{node.get("name")}')
            if tag not in kinds:
                continue
            kind = 'error' if node.get(GLIB + 'error-domain') else kinds[tag]
            ctype = node.get(C + 'type') or node.get(GLIB + 'type-name')
            if ctype:
                types.setdefault(ctype, f'{kind}@{ns}.{node.get("name")}')
            for child in node:
                fragment = members.get(child.tag[len(CORE):])
                if fragment:
                    functions.setdefault(child.get(C + 'identifier'),
                                         f'{fragment}@{ns}.{node.get("name")}.{child.get("name")}')
    return types, functions


def link(kind_at_name, member=''):
    return f'[{kind_at_name}{member}]'


def check_comment_line(text, types, functions):
    for found in TYPE_SIGIL.finditer(text):
        target = types.get(found.group(1))
        if found.group(2) and target:
            kind = 'signal' if found.group(2).startswith('::') else 'property'
            yield f'gtk-doc sigil {found.group(0)}: write [{kind}@{target.split("@")[1]}{found.group(2)}]'
        elif target:
            yield f'gtk-doc sigil {found.group(0)}: write {link(target)}'
        else:
            yield f'gtk-doc sigil {found.group(0)}: name the type in backquotes or link it'
    for found in MEMBER.finditer(text):
        target = types.get(found.group(1))
        if target:
            kind = 'signal' if found.group(2) == '::' else 'property'
            yield (f'gtk-doc {kind} {found.group(0)}: write '
                   f'[{kind}@{target.split("@")[1]}{found.group(2)}{found.group(3)}]')
    for found in FUNCTION.finditer(text):
        target = functions.get(found.group(1))
        if target:
            yield f'gtk-doc function {found.group(0)}: write {link(target)}'
    if GTKDOC_BLOCK.search(text):
        yield 'gtk-doc |[ ]| code block: write a ``` fence with a language'


class Fences:
    """Follows the code fences of a Markdown text, line by line."""

    def __init__(self):
        self.open = None

    def feed(self, text):
        """Returns whether the line is code (a fence or inside one), and a
        complaint about an unlabelled opening fence, or None."""
        found = FENCE.match(text)
        if self.open is None:
            if not found:
                return False, None
            self.open = found.group(1)
            if found.group(2).strip() == '':
                return True, 'code fence without a language: write ```c, ```sh, ```text …'
            return True, None
        if found and found.group(1)[0] == self.open[0] and len(found.group(1)) >= len(self.open) \
           and found.group(2).strip() == '':
            self.open = None
        return True, None


def check_source(lines, types, functions):
    in_block = False
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not in_block:
            if stripped.startswith('/**') and not stripped.startswith('/***'):
                in_block, first, fences = True, True, Fences()
                stripped = stripped[3:].strip()
            else:
                continue
        ends = '*/' in stripped
        text = re.sub(r'^\*(?!/)\s?', '', stripped.split('*/')[0].rstrip())
        if first and text:
            first = False
            if IDENTIFIER_LINE.match(text):
                text = ''
        code, complaint = fences.feed(text)
        if complaint:
            yield number, complaint
        if not code:
            for complaint in check_comment_line(text, types, functions):
                yield number, complaint
        if ends:
            in_block = False


def check_markdown(lines):
    fences = Fences()
    for number, line in enumerate(lines, 1):
        _, complaint = fences.feed(line)
        if complaint:
            yield number, complaint


def main(argv):
    girs = [argv[i + 1] for i, arg in enumerate(argv) if arg == '--gir']
    files = [arg for i, arg in enumerate(argv) if arg != '--gir' and (i == 0 or argv[i - 1] != '--gir')]
    if not girs or not files:
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    types, functions = load_symbols(girs)
    problems = 0
    for path in files:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
        found = check_markdown(lines) if path.endswith('.md') else check_source(lines, types, functions)
        for number, complaint in found:
            print(f'{path}:{number}: {complaint}')
            problems += 1
    print(f'{len(files)} files checked, {problems} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
