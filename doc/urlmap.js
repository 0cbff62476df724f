// SPDX-License-Identifier: LGPL-2.1-or-later

// Where the online references of the namespaces the API reference links to
// live: gi-docgen's main.js points its links to other namespaces there.
baseURLs = [
  ['GLib', 'https://docs.gtk.org/glib/'],
  ['GObject', 'https://docs.gtk.org/gobject/'],
  ['Gio', 'https://docs.gtk.org/gio/'],
]
