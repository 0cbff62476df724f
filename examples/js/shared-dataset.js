// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The first example of MPIRE's "Shared objects" page with libwpool from
// GJS. JavaScript runs on GJS's main thread only, so the task is a C
// function loaded by symbol from libwpool-example-tasks.so; the map runs
// on worker threads and its result comes back as a Promise.
//
//   gjs -m examples/js/shared-dataset.js

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

Gio._promisify(Wpool.Pool.prototype, 'map_async', 'map_finish');

const module = GLib.getenv('WPOOL_EXAMPLE_MODULE') ?? 'libwpool-example-tasks.so';
const nValues = 8 * 1024 * 1024;
const nTasks = 100;

// A big dataset: a GVariant array of doubles, built once.
const values = new Float64Array(nValues).map((_, i) => i % 1000);
const dataset = GLib.Variant.new_from_bytes(new GLib.VariantType('ad'),
    new GLib.Bytes(new Uint8Array(values.buffer)), true);

const pool = new Wpool.Pool({
    n_jobs: 4,
    start_method: Wpool.StartMethod.THREADING,
    shared_objects: GLib.Variant.new_tuple([dataset, new GLib.Variant('s', 'a big dataset')]),
});

const task = Wpool.Task.new_for_symbol(module, 'wpool_example_slice_sum');
task.set_result_type(new GLib.VariantType('(uutd)'));

const perTask = nValues / nTasks;
const slices = new GLib.Variant('a(tt)',
    Array.from({length: nTasks}, (_, i) => [i * perTask, perTask]));

const loop = new GLib.MainLoop(null, false);
let status = 0;
pool.map_async(task, slices, null).then(results => {
    const rows = results.deepUnpack();
    const addresses = new Set(rows.map(([, , address]) => address));
    const perWorker = [0, 0, 0, 0];
    rows.forEach(([worker]) => perWorker[worker]++);
    print(`JS: ${rows.length} tasks; per worker: ${perWorker.join(', ')}`);
    print(`JS: dataset addresses seen by the workers: ${addresses.size} distinct`);
    print(`JS: sum of the dataset: ${rows.reduce((sum, [, , , s]) => sum + s, 0)}`);
}).catch(error => {
    printerr(`JS: ${error.message}`);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
