#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Writes the seed corpus of fuzz-frames: byte streams of the frames a pool
# and a worker process send each other (libwpool/wpool-protocol-private.h),
# well-formed and a few broken ones, so that the fuzzer starts from inputs
# that reach past the frame header.
#
#   fuzz/make-corpus.py [DIR]    (default: fuzz/corpus)

import os
import struct
import sys

import gi
gi.require_version('GLib', '2.0')
from gi.repository import GLib  # noqa: E402

RUN_CHUNK, RESULTS, ERROR, SETUP, SHARED_OBJECTS = 1, 2, 3, 4, 5
EXIT, EXIT_RESULT, TRANSFER = 12, 13, 14
KEEP_GOING, TIMED, DEADLINE, TRANSFERRED = 1, 2, 4, 8


def frame(kind, type_string, value):
    data = GLib.Variant(type_string, value).get_data_as_bytes().get_data()
    return struct.pack('=IIQ', kind, 0, len(data)) + data


def setup(worker_id, shared_type=''):
    task = ('/nonexistent/libwpool-test-module.so', 'wpool_test_square', '', '')
    return frame(SETUP, '(ua(ssss)s)', (worker_id, [task, ('', '', '', ''), ('', '', '', '')], shared_type))


def run_chunk(first, items_type, items, result_type='', flags=0):
    return frame(RUN_CHUNK, '(uusuv)',
                 (first, len(items), result_type, flags, GLib.Variant(items_type, items)))


SEEDS = {
    'run-chunk-doubles': run_chunk(0, 'ad', [1.0, 2.0, 3.0], 'd'),
    'run-chunk-keep-going-timed': run_chunk(4, 'ai', [1, -2, 3], 'i', KEEP_GOING | TIMED | DEADLINE),
    'run-chunk-strings': run_chunk(0, 'as', ['a', 'bc', ''], ''),
    'run-chunk-tuples': run_chunk(2, 'a(ud)', [(0, 1.5), (1, 2.5)], '(ud)'),
    'run-chunk-transferred': run_chunk(0, 'ad', [], 'd', TRANSFERRED),
    'run-chunk-bad-type': run_chunk(0, 'ad', [1.0], 'a{'),
    'two-chunks-then-exit': (run_chunk(0, 'au', [1, 2], 'u') + run_chunk(2, 'au', [3], 'u')
                             + frame(EXIT, '(s)', ('()',))),
    # The worker-exit's result checked against the type the pool declares.
    'exit-other-type': frame(EXIT, '(s)', ('(u)',)) + frame(EXIT, '(s)', ('',)),
    'exit-indefinite-type': frame(EXIT, '(s)', ('*',)),
    'transfer-without-fd': frame(TRANSFER, '(t)', (1 << 20,)),
    'results-doubles': frame(RESULTS, '(uvat)', (0, GLib.Variant('ad', [0.5] * 8), [1] * 8)),
    'results-tuples': frame(RESULTS, '(uvat)', (0, GLib.Variant('a(ud)', [(i, i / 2) for i in range(8)]), [])),
    'results-boxed': frame(RESULTS, '(uvat)', (0, GLib.Variant('av', [GLib.Variant('s', 'x')] * 8), [])),
    'error-then-results': (frame(ERROR, '(usis)', (3, 'g-io-error-quark', 13, 'bad item'))
                           + frame(RESULTS, '(uvat)', (0, GLib.Variant('ad', [0.0] * 8), []))),
    'exit-result': frame(EXIT_RESULT, '(v)', (GLib.Variant('s', 'done'),)),
    'truncated': run_chunk(0, 'ad', [1.0, 2.0], 'd')[:-5],
    'oversized-header': struct.pack('=IIQ', RUN_CHUNK, 0, 1 << 40),
    'unknown-kind': struct.pack('=IIQ', 99, 0, 4) + b'abcd',
    'non-normal': struct.pack('=IIQ', RESULTS, 0, 9) + b'\xff' * 9,
    # What a spawned worker reads first; its id indexes the progress page.
    'setup': setup(0, '(ds)') + frame(SHARED_OBJECTS, 'd', 1.5) + frame(SHARED_OBJECTS, 's', 'x'),
    'setup-worker-id-max': setup(0xFFFFFFFF),
    'setup-worker-id-past-the-page': setup(2),
    'regression-setup-indefinite-shared-type': setup(0, '*') + frame(SHARED_OBJECTS, 'd', 1.5),
}


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
    os.makedirs(directory, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(directory, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
