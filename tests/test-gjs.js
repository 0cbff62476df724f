// SPDX-License-Identifier: LGPL-2.1-or-later
//
// libwpool through GJS: C tasks loaded by symbol, async map as a callback
// and as a Promise, and a JS function refused cleanly under THREADING.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

// The installed GJS module, from the source tree.
import '../gir/js/wpool.js';

Gio._promisify(Wpool.Pool.prototype, 'map_async', 'map_finish');
Gio._promisify(Wpool.Pool.prototype, 'apply_async', 'apply_finish');

const MODULE = GLib.getenv('WPOOL_TEST_MODULE');

function assert(condition, message) {
    if (!condition)
        throw new Error(`assertion failed: ${message}`);
}

function assertEqual(actual, expected, message = '') {
    const a = JSON.stringify(actual), e = JSON.stringify(expected);
    assert(a === e, `${message} expected ${e}, got ${a}`);
}

function assertGError(error, domain, code, message = '') {
    assert(error instanceof GLib.Error, `${message} expected a GLib.Error, got ${error}`);
    assert(error.matches(domain, code),
        `${message} expected ${GLib.quark_to_string(domain)}:${code}, got ${error}`);
}

function threadingPool(props = {}) {
    return new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.THREADING, ...props});
}

function squareTask() {
    const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_square');
    task.set_result_type(new GLib.VariantType('d'));
    return task;
}

function mapWithCallback(pool, task, items, cancellable = null) {
    return new Promise(resolve => {
        pool.map_async(task, items, cancellable, (source, result) => {
            try {
                resolve({results: source.map_finish(result)});
            } catch (error) {
                resolve({error});
            }
        });
    });
}

// Gio._promisify() drops a leading `true` from finish's results, which
// would make the end (`false`) look different from an outcome.
function nextOutcome(stream) {
    return new Promise((resolve, reject) => {
        stream.next_async(null, (source, result) => {
            try {
                resolve(source.next_finish(result));
            } catch (error) {
                reject(error);
            }
        });
    });
}

const tests = {
    'properties'() {
        const pool = new Wpool.Pool();
        assertEqual(pool.start_method, Wpool.StartMethod.FORK);
        assertEqual(pool.n_jobs, GLib.get_num_processors());
        assertEqual(pool.keep_alive, false);
        assertEqual(pool.workers_running, false);
    },

    'symbol task, sync map'() {
        const results = threadingPool().map(squareTask(), new GLib.Variant('ad', [1, 2, 3, 4]), null);
        assertEqual(results.get_type_string(), 'ad');
        assertEqual(results.deepUnpack(), [1, 4, 9, 16]);
    },

    'shared objects as a tuple'() {
        const pool = threadingPool();
        pool.set_shared_objects(new GLib.Variant('(dd)', [10, 0.5]));
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_scaled');
        const results = pool.map(task, new GLib.Variant('ad', [1, 2]), null);
        assertEqual(results.deepUnpack().map(v => v.deepUnpack()), [10.5, 20.5]);
    },

    'shared objects refused while kept-alive workers run'() {
        const pool = threadingPool({keep_alive: true});
        pool.map(squareTask(), new GLib.Variant('ad', [1]), null);
        assert(pool.workers_running, 'workers run');
        try {
            pool.set_shared_objects(new GLib.Variant('i', 1));
            assert(false, 'set_shared_objects should throw');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.WORKERS_RUNNING);
        }
        pool.keep_alive = false;
        assert(!pool.workers_running, 'workers stopped');
        pool.set_shared_objects(new GLib.Variant('i', 1));
    },

    async 'async map with a callback'() {
        const {results, error} = await mapWithCallback(threadingPool(), squareTask(),
            new GLib.Variant('ad', [...Array(100).keys()]));
        assertEqual(error, undefined);
        assertEqual(results.deepUnpack(), [...Array(100).keys()].map(x => x * x));
    },

    async 'async map through Gio._promisify'() {
        const results = await threadingPool().map_async(squareTask(), new GLib.Variant('ad', [5, 6]), null);
        assertEqual(results.deepUnpack(), [25, 36]);
    },

    async 'a task error reaches the caller as a GError'() {
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_fail_on_negative');
        try {
            await threadingPool().map_async(task, new GLib.Variant('ad', [1, -2, 3]), null);
            assert(false, 'map should fail');
        } catch (error) {
            assertGError(error, Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT);
            assert(error.message.startsWith('Item 1 on worker '), error.message);
        }
    },

    async 'cancellation'() {
        const pool = threadingPool({chunk_size: 1});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_sleep_ms');
        const cancellable = new Gio.Cancellable();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 30, () => {
            cancellable.cancel();
            return GLib.SOURCE_REMOVE;
        });
        const {results, error} = await mapWithCallback(pool, task,
            new GLib.Variant('au', Array(2000).fill(10)), cancellable);
        assertEqual(results, undefined);
        assertGError(error, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    },

    'a JS function is refused under THREADING, sync'() {
        const pool = threadingPool();
        let called = false;
        const task = Wpool.Task.new(() => {
            called = true;
            return new GLib.Variant('i', 0);
        });
        try {
            pool.map(task, new GLib.Variant('ai', [1, 2, 3]), null);
            assert(false, 'map should fail');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
            assert(error.message.includes('new_for_symbol'), error.message);
        }
        assert(!called, 'the JS function never ran');
        assert(!pool.workers_running, 'no worker started');
        // The pool is still usable with a symbol task.
        assertEqual(pool.map(squareTask(), new GLib.Variant('ad', [3]), null).deepUnpack(), [9]);
    },

    async 'a JS function is refused under THREADING, async'() {
        const task = Wpool.Task.new(() => new GLib.Variant('i', 0));
        const {error} = await mapWithCallback(threadingPool(), task, new GLib.Variant('ai', [1]));
        assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
    },

    async 'symbol task under FORK'() {
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.FORK});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_whoami');
        task.set_result_type(new GLib.VariantType('(uut)'));
        const results = await pool.map_async(task, new GLib.Variant('ad', [1, 2, 3, 4]), null);
        const pids = new Set(results.deepUnpack().map(([, pid]) => pid));
        assert(pids.size >= 1 && pids.size <= 2, `pids ${[...pids]}`);
        assert(!pids.has(new Gio.Credentials().get_unix_pid()), 'the tasks ran in other processes');
    },

    'a JS function is refused under FORK'() {
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.FORK});
        const task = Wpool.Task.new(() => new GLib.Variant('i', 0));
        try {
            pool.map(task, new GLib.Variant('ai', [1]), null);
            assert(false, 'map should fail');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
            assert(error.message.includes('new_for_symbol'), error.message);
        }
        assert(!pool.workers_running, 'no worker started');
    },

    async 'wpool.js: await pool.map(array, task), JS values in and out'() {
        for (const start_method of [Wpool.StartMethod.THREADING, Wpool.StartMethod.FORK]) {
            const pool = new Wpool.Pool({n_jobs: 2, start_method});
            const seen = [];
            const results = await pool.map([1, 2, 3, 4], squareTask(),
                {progress: (done, total) => seen.push([done, total])});
            assertEqual(results, [1, 4, 9, 16], `method ${start_method}`);
            assertEqual(seen[seen.length - 1], [4, 4], 'progress reached the end');

            // A chunk task declares its item type; tuples by their type string.
            const chunks = Wpool.Task.new_for_chunk_symbol(MODULE, 'wpool_test_square_plus_one_chunk',
                new GLib.VariantType('d'), new GLib.VariantType('d'));
            assertEqual(await pool.map([1, 2], chunks), [2, 5]);
            const whoami = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_whoami');
            whoami.set_result_type(new GLib.VariantType('(uut)'));
            assertEqual((await pool.map([[1, 'a']], whoami, {itemType: '(is)'})).length, 1);
        }
    },

    async 'wpool.js: errors'() {
        const pool = threadingPool();
        // A JavaScript function cannot be a task, in either form.
        try {
            await pool.map([1], () => 1);
            assert(false, 'map should fail');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
            assert(error.message.includes('new_for_symbol'), error.message);
        }
        try {
            pool.map(() => 1, new GLib.Variant('ad', [1]), null);
            assert(false, 'map should fail');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
        }
        // Items of no GVariant type one can tell, and a task's error.
        try {
            await pool.map([1, 'a'], squareTask());
            assert(false, 'map should fail');
        } catch (error) {
            assert(error instanceof TypeError && error.message.includes('itemType'), `${error}`);
        }
        const failing = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_fail_on_negative');
        try {
            await pool.map([1, -1], failing);
            assert(false, 'map should fail');
        } catch (error) {
            assert(error instanceof GLib.Error, `${error}`);
        }
        // The C API, synchronous, as before.
        assertEqual(pool.map(squareTask(), new GLib.Variant('ad', [5]), null).deepUnpack(), [25]);
    },

    async 'apply_async, many in flight, under FORKSERVER'() {
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.FORKSERVER, keep_alive: true});
        const task = squareTask();
        const results = await Promise.all([1, 2, 3, 4, 5].map(x =>
            pool.apply_async(task, new GLib.Variant('d', x), null)));
        assertEqual(results.map(r => r.deepUnpack()), [1, 4, 9, 16, 25]);
        pool.keep_alive = false;
    },

    async 'progress as property notifications'() {
        const pool = threadingPool({chunk_size: 1});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_sleep_ms');
        const seen = [];
        pool.connect('notify::n-completed', () => seen.push(pool.n_completed));
        await pool.map_async(task, new GLib.Variant('au', Array(40).fill(3)), null);
        assertEqual(seen[seen.length - 1], 40);
        assertEqual(pool.n_total, 40);
    },

    async 'imap with per-item outcomes, as promises, under SPAWN'() {
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.SPAWN, chunk_size: 2});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_fail_on_negative');
        task.set_result_type(new GLib.VariantType('d'));
        const stream = pool.imap(task, new GLib.Variant('ad', [1, -2, 3]), Wpool.MapFlags.KEEP_GOING, null);
        const outcomes = [];
        for (;;) {
            // eslint-disable-next-line no-await-in-loop
            const [ok, index, result, itemError] = await nextOutcome(stream);
            if (!ok)
                break;
            outcomes.push([index, result ? result.deepUnpack() : itemError]);
        }
        assertEqual(outcomes.map(([i]) => i), [0, 1, 2]);
        assertEqual([outcomes[0][1], outcomes[2][1]], [1, 3]);
        assertGError(outcomes[1][1], Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT);
    },

    async 'task timeout under FORKSERVER'() {
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.FORKSERVER, task_timeout: 0.3});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_sleep_ms');
        try {
            await pool.map_async(task, new GLib.Variant('au', [1, 5000]), null);
            assert(false, 'map should fail');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.TIMED_OUT);
            assert(error.message.startsWith('Item 1: worker '), error.message);
        }
    },

    async 'insights under THREADING'() {
        const pool = threadingPool({chunk_size: 1, enable_insights: true});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_sleep_ms');
        await pool.map_async(task, new GLib.Variant('au', [30, 1, 1, 1]), null);
        const insights = pool.get_insights().deepUnpack();
        assertEqual(insights['n-completed'].deepUnpack(), 4);
        assertEqual(insights['workers'].deepUnpack().length, 2);
        const [map, item] = insights['slowest-items'].deepUnpack()[0];
        assertEqual([map, item], [0, 0]);
        assert(pool.get_insights_summary().startsWith('Insights: 1 map, 4 items'), 'summary');
        assertEqual(pool.eta, 0);
    },

    async 'worker init, state and exit results under SPAWN'() {
        const exitTask = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_exit_report');
        exitTask.set_result_type(new GLib.VariantType('(uu)'));
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.SPAWN, chunk_size: 1,
            worker_init: Wpool.Task.new_for_symbol(MODULE, 'wpool_test_init_state'), worker_exit: exitTask});
        const task = Wpool.Task.new_for_symbol(MODULE, 'wpool_test_count_in_state');
        task.set_result_type(new GLib.VariantType('(uuu)'));
        await pool.map_async(task, new GLib.Variant('ad', [1, 2, 3, 4, 5, 6]), null);
        const exits = pool.get_exit_results().deepUnpack();
        assertEqual(exits.map(([id]) => id), [0, 1]);
        assertEqual(exits.reduce((sum, [, seen]) => sum + seen, 0), 6);
    },

    async 'chunk task by symbol under FORKSERVER'() {
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.FORKSERVER, chunk_size: 3});
        const task = Wpool.Task.new_for_chunk_symbol(MODULE, 'wpool_test_square_plus_one_chunk',
            new GLib.VariantType('d'), new GLib.VariantType('d'));
        const results = await pool.map_async(task, new GLib.Variant('ad', [0, 1, 2, 3, 4, 5, 6]), null);
        assertEqual(results.deepUnpack(), [1, 2, 5, 10, 17, 26, 37]);
    },

    'missing symbol'() {
        try {
            Wpool.Task.new_for_symbol(MODULE, 'no_such_symbol');
            assert(false, 'should throw');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT);
        }
    },
};

async function main() {
    const names = Object.keys(tests);
    let failed = 0;
    print(`1..${names.length}`);
    for (const [index, name] of names.entries()) {
        try {
            await tests[name]();
            print(`ok ${index + 1} - ${name}`);
        } catch (error) {
            failed++;
            print(`not ok ${index + 1} - ${name}`);
            for (const line of `${error}\n${error.stack ?? ''}`.split('\n'))
                print(`# ${line}`);
        }
    }
    return failed;
}

const loop = new GLib.MainLoop(null, false);
let exitCode = 0;
main().then(failed => {
    exitCode = failed ? 1 : 0;
}).catch(error => {
    printerr(error);
    exitCode = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(exitCode);
