#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Follows every link of the API reference gi-docgen generated, offline.

usage: check-html-links.py HTML-DIR

A relative href or src must name a file that exists, and its #fragment an
id (or an <a name>) of that page. A link out must be a well-formed https
URL; it is not fetched. gi-docgen's links to other namespaces
(<a data-namespace="GLib" data-link="struct.Variant.html">) get their URL
in the browser from the baseURLs of urlmap.js: the namespace must be
there, and the page must load urlmap.js. Fails, naming page and link, on
any broken one.
"""

import html.parser
import os
import re
import sys
import urllib.parse

LINK_ATTRIBUTES = {'a': 'href', 'area': 'href', 'link': 'href', 'img': 'src', 'script': 'src',
                   'iframe': 'src', 'source': 'src', 'embed': 'src'}


class Page(html.parser.HTMLParser):
    def __init__(self, path):
        super().__init__()
        self.ids = set()
        self.links = []     # (line, url)
        self.outside = []   # (line, namespace, link): links to other namespaces
        with open(path, encoding='utf-8') as f:
            self.feed(f.read())
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        line = self.getpos()[0]
        for name in ('id', 'name') if tag == 'a' else ('id',):
            if attrs.get(name):
                self.ids.add(attrs[name])
        if tag == 'a' and 'data-namespace' in attrs:
            self.outside.append((line, attrs['data-namespace'], attrs.get('data-link') or ''))
            return
        attribute = LINK_ATTRIBUTES.get(tag)
        if attribute and attrs.get(attribute) is not None:
            self.links.append((line, attrs[attribute].strip()))

    handle_startendtag = handle_starttag


def check_url_out(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != 'https' or not parts.netloc or re.search(r'\s', url):
        return f'not a well-formed https URL: {url}'
    return None


def main(root):
    root = os.path.abspath(root)
    paths = sorted(os.path.join(top, name) for top, _, names in os.walk(root)
                   for name in names if name.endswith('.html'))
    if not paths:
        print(f'{root}: no HTML pages', file=sys.stderr)
        return 1
    pages = {}

    def page(path):
        if path not in pages:
            pages[path] = Page(path)
        return pages[path]

    base_urls = {}
    urlmap = os.path.join(root, 'urlmap.js')
    if os.path.exists(urlmap):
        with open(urlmap, encoding='utf-8') as f:
            base_urls = dict(re.findall(r"\[\s*'(\w+)'\s*,\s*'([^']*)'\s*\]", f.read()))

    problems = []
    counts = {'internal': 0, 'fragments': 0, 'out': 0, 'namespaces': 0, 'self': 0}
    for path in paths:
        name = os.path.relpath(path, root)

        def complain(line, message):
            problems.append(f'{name}:{line}: {message}')

        this = page(path)
        for line, url in this.links:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme == 'mailto':
                continue
            if parts.scheme or parts.netloc:
                counts['out'] += 1
                message = check_url_out(url)
                if message:
                    complain(line, message)
                continue
            counts['internal'] += 1
            if url == '':
                # gi-docgen 2023.1 writes href="" for an unset website_url
                # or browse_url: a link to the page itself.
                counts['self'] += 1
                continue
            target = path
            if parts.path:
                target = os.path.normpath(os.path.join(os.path.dirname(path),
                                                       urllib.parse.unquote(parts.path)))
                if not os.path.isfile(target):
                    complain(line, f'{url}: no such file')
                    continue
            if parts.fragment:
                counts['fragments'] += 1
                if not target.endswith('.html'):
                    complain(line, f'{url}: a fragment of a page that is not HTML')
                elif urllib.parse.unquote(parts.fragment) not in page(target).ids:
                    complain(line, f'{url}: no id "{parts.fragment}" in {os.path.relpath(target, root)}')
        for line, namespace, link in this.outside:
            counts['namespaces'] += 1
            if namespace not in base_urls:
                complain(line, f'link to {namespace} ({link}): no base URL for it in urlmap.js')
                continue
            message = check_url_out(base_urls[namespace] + link)
            if message:
                complain(line, message)
        if this.outside and ('urlmap.js' not in {os.path.basename(url) for _, url in this.links}):
            complain(1, 'links to other namespaces, but does not load urlmap.js')

    for problem in problems:
        print(problem)
    print(f'{len(paths)} pages; {counts["internal"]} internal links ({counts["fragments"]} with a fragment, '
          f'{counts["self"]} empty), {counts["out"]} links out and {counts["namespaces"]} to other '
          f'namespaces checked; {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
