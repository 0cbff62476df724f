// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The second example of MPIRE's "Shared objects" page with libwpool from
// GJS, the copy-on-write alternative, under all four start methods. The
// task is C, loaded by symbol: JavaScript runs on GJS's main thread only.
//
//   gjs -m examples/js/result-containers.js

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

Gio._promisify(Wpool.Pool.prototype, 'map_async', 'map_finish');

const module = GLib.getenv('WPOOL_EXAMPLE_MODULE') ?? 'libwpool-example-tasks.so';
const task = Wpool.Task.new_for_symbol(module, 'wpool_example_square_add_and_modulo_with_index');
task.set_result_type(new GLib.VariantType('i'));

async function run(startMethod, name) {
    // Use a shared array of size 100 and type float to store the results
    const squareResults = Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 100, false);
    const addResults = Wpool.SharedArray.new(Wpool.SharedArrayType.FLOAT, 100, false);
    const pool = new Wpool.Pool({
        n_jobs: 4,
        start_method: startMethod,
        shared_objects: GLib.Variant.new_tuple([squareResults.get_handle(), addResults.get_handle()]),
    });

    // enumerate(range(100))
    const pairs = Wpool.items_enumerate(new GLib.Variant('ai', [...Array(100).keys()]));
    const modulo = (await pool.map_async(task, pairs, null)).deepUnpack();
    const squares = squareResults.dup_values().deepUnpack();
    const adds = addResults.dup_values().deepUnpack();

    print(`JS, ${name}:`);
    print(`  square results: ${squares.join(', ')}`);
    print(`  add results: ${adds.join(', ')}`);
    print(`  modulo results: ${modulo.join(', ')}`);
    const right = squares.every((v, x) => v === x * x) && adds.every((v, x) => v === x + x) &&
        modulo.every((v, x) => v === x % 2);
    print(right ? '  all 100 results are right' : '  WRONG RESULTS');
    return right;
}

const loop = new GLib.MainLoop(null, false);
let status = 0;
(async () => {
    for (const [method, name] of [[Wpool.StartMethod.THREADING, 'threading'], [Wpool.StartMethod.FORK, 'fork'],
        [Wpool.StartMethod.FORKSERVER, 'forkserver'], [Wpool.StartMethod.SPAWN, 'spawn']]) {
        if (!await run(method, name))
            status = 1;
    }
})().catch(error => {
    printerr(`JS: ${error.message}`);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
