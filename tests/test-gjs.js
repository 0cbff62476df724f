// SPDX-License-Identifier: LGPL-2.1-or-later
//
// libwpool through GJS: C tasks loaded by symbol, async map as a callback
// and as a Promise; JavaScript functions in gjs worker processes under
// SPAWN (gjs-tasks.js), refused cleanly under every other start method.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

// The installed GJS module, from the source tree.
import {fromVariant, toVariant} from '../gir/js/wpool.js';
import {runTests} from './tap.js';

Gio._promisify(Wpool.Pool.prototype, 'map_async', 'map_finish');
Gio._promisify(Wpool.Pool.prototype, 'apply_async', 'apply_finish');

const MODULE = GLib.getenv('WPOOL_TEST_MODULE');
const TASKS = GLib.Uri.resolve_relative(import.meta.url, 'gjs-tasks.js', GLib.UriFlags.NONE);
const SELF_PID = new Gio.Credentials().get_unix_pid();

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

async function assertRejects(promise, domain, code, ...fragments) {
    try {
        await promise;
    } catch (error) {
        assertGError(error, domain, code);
        for (const fragment of fragments)
            assert(error.message.includes(fragment), `"${fragment}" not in: ${error.message}`);
        return error;
    }
    throw new Error('assertion failed: the promise should reject');
}

// JSON that shows typed arrays by class, to compare converted values.
function show(value) {
    return JSON.stringify(value, (key, x) =>
        ArrayBuffer.isView(x) ? `${x.constructor.name}(${Array.from(x, String)})` : x);
}

function spawnPool(props = {}) {
    return new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.SPAWN, ...props});
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
            assert(error.message.includes('SPAWN') && error.message.includes('pool.mapModule()'), error.message);
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

    'a JS function is refused under FORK and FORKSERVER, naming SPAWN'() {
        for (const start_method of [Wpool.StartMethod.FORK, Wpool.StartMethod.FORKSERVER]) {
            const pool = new Wpool.Pool({n_jobs: 2, start_method});
            const task = Wpool.Task.new(() => new GLib.Variant('i', 0));
            try {
                pool.map(task, new GLib.Variant('ai', [1]), null);
                assert(false, 'map should fail');
            } catch (error) {
                assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
                assert(error.message.includes('SPAWN') && error.message.includes('pool.mapModule()'),
                    error.message);
            }
            assert(!pool.workers_running, 'no worker started');
        }
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
        await assertRejects(pool.map([1], () => 1), Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED,
            'SPAWN', 'pool.mapModule(');
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

    async 'properties whose change can fail are set at construction'() {
        for (const name of ['shared-objects', 'worker-init', 'worker-exit', 'cpu-ids']) {
            const pspec = Wpool.Pool.find_property(name);
            assert(pspec.flags & GObject.ParamFlags.CONSTRUCT_ONLY, `${name} is construct-only`);
        }
        // Afterwards the methods change them, and throw when they cannot.
        const pool = threadingPool({keep_alive: true, shared_objects: new GLib.Variant('i', 1)});
        await pool.map_async(squareTask(), new GLib.Variant('ad', [1]), null);
        try {
            pool.set_shared_objects(new GLib.Variant('i', 2));
            throw new Error('set_shared_objects() should throw while the workers run');
        } catch (error) {
            assertGError(error, Wpool.error_quark(), Wpool.Error.WORKERS_RUNNING);
        }
        assertEqual(pool.shared_objects.deepUnpack(), 1);
        pool.keep_alive = false;
        pool.set_shared_objects(new GLib.Variant('i', 2));
        assertEqual(pool.shared_objects.deepUnpack(), 2);
        // A value the pool cannot take at construction fails every map.
        const closure = Wpool.Task.new((worker, shared, item) => item);
        const refused = spawnPool({worker_init: closure});
        for (let attempt = 0; attempt < 2; attempt++) {
            await assertRejects(refused.map_async(squareTask(), new GLib.Variant('ad', [1]), null),
                Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED, 'constructed with a “worker-init” it cannot take');
        }
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

    'wpool.js: JS values to GLib.Variants and back'() {
        const values = [1.5, 'a', true, null, [1, 'b', [false]], {a: [1], b: {c: 's'}},
            new Float64Array([1.5, -2]), new Int32Array([7]), new Uint8Array([1, 2]),
            new BigUint64Array([5n]), new Float64Array(0)];
        for (const value of values)
            assertEqual(show(fromVariant(toVariant(value))), show(value));
        // Typed arrays as the bytes of their GVariant arrays.
        assertEqual(toVariant(new Float64Array([1, 2])).get_type_string(), 'ad');
        assertEqual(toVariant(new Float64Array([1, 2])).deepUnpack(), [1, 2]);
        assertEqual(toVariant([1, 2]).get_type_string(), 'av');
        // GVariant has no signed byte nor float: they widen.
        assertEqual(show(fromVariant(toVariant(new Int8Array([-1])))), show(new Int16Array([-1])));
        assertEqual(show(fromVariant(toVariant(new Float32Array([0.5])))), show(new Float64Array([0.5])));
        assertEqual(toVariant(undefined).get_type_string(), 'mv');
        // Any variant: the tuples and 64-bit integers of a declared type.
        assertEqual(fromVariant(new GLib.Variant('(ias)', [1, ['x']])), [1, ['x']]);
        assertEqual(fromVariant(new GLib.Variant('a{sd}', {x: 1})), {x: 1});
        assertEqual(fromVariant(new GLib.Variant('mi', null)), null);
        const variant = new GLib.Variant('i', 3);
        assert(toVariant(variant) === variant, 'a GLib.Variant stays');
        for (const value of [new Map(), () => 1, 1n, new Date()]) {
            try {
                toVariant(value);
                assert(false, `${typeof value} should throw`);
            } catch (error) {
                assert(error instanceof TypeError && error.message.includes('Cannot convert'), `${error}`);
            }
        }
    },

    async 'JS functions under SPAWN: results in order, values both ways, progress, async'() {
        const pool = spawnPool();
        const items = [...Array(30).keys()];
        const seen = [];
        const squares = await pool.mapModule(items, TASKS, 'square',
            {progress: (done, total) => seen.push([done, total])});
        assertEqual(squares, items.map(x => x * x));
        assertEqual(seen[seen.length - 1], [30, 30], 'progress reached the total');

        // A typed array's items, an item type, and a task to pool.map().
        assertEqual(await pool.mapModule(new Float64Array([1.5, 2]), TASKS, 'square'), [2.25, 4]);
        assertEqual(await pool.mapModule([2, 3], TASKS, 'square', {itemType: 'i'}), [4, 9]);
        const task = Wpool.Task.newForModule(TASKS, 'square');
        assertEqual(task.get_program().slice(0, 2), ['gjs', '-m']);
        assertEqual(await pool.map([4], task), [16]);
        assertEqual(fromVariant(pool.map(task, new GLib.Variant('ad', [5]), null)), [25]);

        const values = [1, 'a', true, null, [1, 'b'], {a: [1, {b: null}]}, new Float64Array([0.5, 1]),
            new Int32Array([-3])];
        const echoed = await pool.mapModule(values, TASKS, 'echo');
        assertEqual(show(echoed.map(({item}) => item)), show(values));
        assertEqual(echoed.map(({kind}) => kind),
            ['Number', 'String', 'Boolean', null, 'Array', 'Object', 'Float64Array', 'Int32Array']);

        // An async function's value, once its promise settled.
        assertEqual(await pool.mapModule([1, 2, 3], TASKS, 'later'), [2, 4, 6]);
    },

    async 'JS functions under SPAWN: shared objects, once per worker, in every worker'() {
        const pool = spawnPool({chunk_size: 1});
        const data = Float64Array.from({length: 10000}, (_, i) => i);
        pool.set_shared_objects({scale: 3, data});
        assertEqual(pool.get_shared_objects().lookup_value('data', null).get_type_string(), 'ad');
        const results = await pool.mapModule(Array(8).fill(20), TASKS, 'whoami');
        const pids = new Set(results.map(({pid}) => pid));
        assert(pids.size >= 1 && pids.size <= 2 && !pids.has(SELF_PID), `pids ${[...pids]}`);
        for (const {shared, sharedSeen, worker} of results) {
            assertEqual(shared.scale, 3);
            assert(shared.data instanceof Float64Array && shared.data.length === 10000 &&
                shared.data[9999] === 9999, 'the typed array arrived whole');
            assertEqual(sharedSeen, 1, `worker ${worker} converted the shared objects once`);
        }
        // Each worker id is one process.
        const pidOf = new Map(results.map(({worker, pid}) => [worker, pid]));
        assert(results.every(({worker, pid}) => pidOf.get(worker) === pid), 'one pid per worker');
    },

    async 'JS functions under SPAWN: kept-alive workers serve the next map'() {
        const pool = spawnPool({n_jobs: 1, keep_alive: true});
        pool.set_shared_objects([1]);
        const first = await pool.mapModule([0, 0], TASKS, 'whoami');
        assert(pool.workers_running, 'the worker runs on');
        const second = await pool.mapModule([0], TASKS, 'whoami');
        assertEqual(second[0].pid, first[0].pid, 'the same process');
        assertEqual(second[0].calls, 3, 'the same module, imported once');
        assertEqual(second[0].sharedSeen, 1);
        pool.keep_alive = false;
        assert(!pool.workers_running, 'the worker stopped');
    },

    async 'JS functions under SPAWN: errors reach the caller'() {
        const pool = spawnPool();
        // A thrown error, with its message and stack, up to the worker's frames.
        const error = await assertRejects(pool.mapModule([1, -2, 3], TASKS, 'failOnNegative'),
            Wpool.error_quark(), Wpool.Error.FAILED,
            'Item 1 on worker ', 'RangeError: negative item -2', `failOnNegative@${TASKS}:`);
        assert(!error.message.includes('wpool-worker.js'), error.message);
        // A thrown GLib.Error as it is.
        await assertRejects(pool.mapModule([1], TASKS, 'throwGError'),
            Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT, 'no 1');
        // An async function's rejection, and a result of no GVariant.
        await assertRejects(pool.mapModule([1, -2], TASKS, 'later'), Wpool.error_quark(), Wpool.Error.FAILED,
            'Item 1 on worker ', 'RangeError: negative item -2, later', `later@${TASKS}:`);
        await assertRejects(pool.mapModule([1], TASKS, 'unconvertible'),
            Wpool.error_quark(), Wpool.Error.INVALID_RESULT, 'unconvertible() returned', 'Map');
        // The pool still maps.
        assertEqual(await pool.mapModule([3], TASKS, 'square'), [9]);
    },

    async 'JS functions under SPAWN: a bad module or export fails the start'() {
        const pool = spawnPool({n_jobs: 1});
        const missing = GLib.Uri.resolve_relative(import.meta.url, 'no-such-module.js', GLib.UriFlags.NONE);
        await assertRejects(pool.mapModule([1], missing, 'square'), Wpool.error_quark(), Wpool.Error.FAILED,
            `gjs cannot start: Cannot import ${missing}: ImportError`);
        // A syntax error, with where it is.
        const dir = GLib.Dir.make_tmp('wpool-gjs-XXXXXX');
        const broken = GLib.build_filenamev([dir, 'broken.js']);
        GLib.file_set_contents(broken, 'export function f() {}\nlet x = ;\n');
        try {
            await assertRejects(pool.mapModule([1], broken, 'f'), Wpool.error_quark(), Wpool.Error.FAILED,
                'SyntaxError: ', `@${GLib.filename_to_uri(broken, null)}:2:`);
        } finally {
            GLib.unlink(broken);
            GLib.rmdir(dir);
        }
        await assertRejects(pool.mapModule([1], TASKS, 'noSuchExport'), Wpool.error_quark(), Wpool.Error.FAILED,
            `gjs cannot start: ${TASKS} does not export “noSuchExport”`);
        await assertRejects(pool.mapModule([1], TASKS, 'notAFunction'), Wpool.error_quark(), Wpool.Error.FAILED,
            '“notAFunction” as a number, not a function');
        try {
            await pool.mapModule([1], TASKS, 7);
            assert(false, 'mapModule should reject');
        } catch (nameError) {
            assert(nameError instanceof TypeError, `${nameError}`);
        }
    },

    async 'JS functions under SPAWN: a worker death fails its item'() {
        const pool = spawnPool({n_jobs: 1});
        await assertRejects(pool.mapModule([0, 1, 2], TASKS, 'exitOnOne'), Wpool.error_quark(),
            Wpool.Error.WORKER_DIED, 'Item 1: worker 0', 'exited with status 3');
        await assertRejects(pool.mapModule([0, 1, 2], TASKS, 'killOnOne'), Wpool.error_quark(),
            Wpool.Error.WORKER_DIED, 'Item 1: worker 0', 'signal 9');
    },

    async 'JS functions under SPAWN: task timeout and cancellation'() {
        const pool = spawnPool({n_jobs: 2, chunk_size: 1, task_timeout: 0.5});
        await assertRejects(pool.mapModule([1, 30000], TASKS, 'sleepMs'), Wpool.error_quark(),
            Wpool.Error.TIMED_OUT, 'Item 1: worker ');

        const cancellable = new Gio.Cancellable();
        const cancelled = pool.mapModule(Array(200).fill(20), TASKS, 'sleepMs', {
            cancellable,
            progress: done => done >= 2 && cancellable.cancel(),
        });
        await assertRejects(cancelled, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
        assert(pool.n_completed < 200, `${pool.n_completed} items ran`);
    },

    async 'JS functions are refused but under SPAWN, naming it'() {
        for (const start_method of [Wpool.StartMethod.THREADING, Wpool.StartMethod.FORK,
            Wpool.StartMethod.FORKSERVER]) {
            const pool = new Wpool.Pool({n_jobs: 2, start_method});
            // eslint-disable-next-line no-await-in-loop
            await assertRejects(pool.mapModule([1], TASKS, 'square'), Wpool.error_quark(),
                Wpool.Error.NOT_SUPPORTED, 'only a SPAWN pool', 'Wpool.StartMethod.SPAWN');
            try {
                pool.map(Wpool.Task.newForModule(TASKS, 'square'), new GLib.Variant('ad', [1]), null);
                assert(false, 'map should fail');
            } catch (error) {
                assertGError(error, Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED);
                assert(error.message.includes('only a SPAWN pool'), error.message);
            }
            assert(!pool.workers_running, 'no worker started');
        }
        // Past wpool.js, the worker program itself refuses to be a fork server.
        const forkServer = new Wpool.Pool({n_jobs: 1, start_method: Wpool.StartMethod.FORKSERVER});
        await assertRejects(forkServer.map_async(Wpool.Task.newForModule(TASKS, 'square'),
            new GLib.Variant('ad', [1]), null), Wpool.error_quark(), Wpool.Error.FAILED,
        'The fork server cannot start: ', 'This worker program (gjs) cannot fork its workers: use SPAWN');
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

const loop = new GLib.MainLoop(null, false);
let exitCode = 0;
runTests(tests).then(failed => {
    exitCode = failed ? 1 : 0;
}).catch(error => {
    printerr(error);
    exitCode = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(exitCode);
