// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A live terminal progress bar for a long map from GJS, driven by the
// pool's progress signal and ETA on the main loop, then the insights. The
// task is C, loaded by symbol: JavaScript runs on GJS's main thread only.
//
//   gjs -m examples/js/progress-bar.js [N_ITEMS [MS_PER_ITEM]]

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

Gio._promisify(Wpool.Pool.prototype, 'map_async', 'map_finish');

const [nItems = 200, ms = 20] = ARGV.map(Number);
const module = GLib.getenv('WPOOL_EXAMPLE_MODULE') ?? 'libwpool-example-tasks.so';
const task = Wpool.Task.new_for_symbol(module, 'wpool_example_work_ms');
task.set_result_type(new GLib.VariantType('u'));

const stderr = new Gio.UnixOutputStream({fd: 2, close_fd: false});
const pool = new Wpool.Pool({n_jobs: 4, start_method: Wpool.StartMethod.FORKSERVER,
    chunk_size: 1, enable_insights: true});
let last = 0;

pool.connect('progress', (_pool, completed, total) => {
    const width = 40, filled = Math.floor(Number(completed) * width / Number(total));
    const eta = Math.max(pool.eta, 0).toFixed(1);
    stderr.write_all(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${completed}/${total}  ETA ${eta} s`, null);
    last = Number(completed);
});

const loop = new GLib.MainLoop(null, false);
let exitCode = 1;
pool.map_async(task, new GLib.Variant('au', Array(nItems).fill(ms)), null).then(results => {
    stderr.write_all('\n', null);
    print(`${nItems} items of ${ms} ms on 4 worker processes`);
    print(pool.get_insights_summary());
    exitCode = last === nItems && results.deepUnpack().length === nItems ? 0 : 1;
}).catch(error => {
    printerr(`The map failed: ${error.message}`);
}).finally(() => loop.quit());
loop.run();
System.exit(exitCode);
