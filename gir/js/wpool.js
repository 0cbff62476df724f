// SPDX-License-Identifier: LGPL-2.1-or-later
//
// wpool.js: libwpool for GJS with JavaScript values. Importing it gives
// Wpool.Pool a Promise-based map over JS arrays:
//
//     import Wpool from 'gi://Wpool?version=1';
//     void Wpool.Pool;  // loads libwpool, which holds this module
//     await import('resource:///org/gnome/Wpool/js/wpool.js');
//
//     const pool = new Wpool.Pool({n_jobs: 4, start_method: Wpool.StartMethod.FORK});
//     const task = Wpool.Task.new_for_symbol('libmytasks.so', 'square');
//     const squares = await pool.map([1, 2, 3], task, {progress: (done, total) => …});
//
// This module is a GResource of libwpool, which GJS opens at the first
// class or function of Wpool used, not at `import Wpool`; and a static
// import is looked for before any code runs: so it is imported
// dynamically, after Wpool.Pool. The installed file,
// file:///usr/share/wpool-1/js/wpool.js, may be imported statically.
//
// Items are converted to a GLib.Variant array for the C pool, of the task's
// item type or the one given, and results back to JS values. The C API is
// unchanged: pool.map(task, variant, cancellable) with a Wpool.Task first
// still maps synchronously.
//
// A JavaScript function runs in worker processes of its own, new gjs
// processes that a SPAWN pool starts: GJS runs JavaScript on its main
// thread only, and its engine does not survive a fork. Export the function
// from an ES module and map it by the module's URL and the export's name:
//
//     export function square(x) { return x * x; }
//
//     const pool = new Wpool.Pool({n_jobs: 4, start_method: Wpool.StartMethod.SPAWN});
//     const squares = await pool.mapModule([1, 2, 3], import.meta.url, 'square');
//
// Each worker (wpool-worker.js, installed beside this file) imports the
// module once and calls the export as fn(item, sharedObjects, worker) on
// every item. Items, results and shared objects travel as GLib.Variants:
// see toVariant() and fromVariant(). FORK, FORKSERVER and THREADING refuse
// a JavaScript function.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

const {map: cMap, set_shared_objects: cSetSharedObjects} = Wpool.Pool.prototype;

const NOT_A_TASK = 'A JavaScript function cannot be passed as a task: GJS runs JavaScript on ' +
    'its main thread only, and its engine does not survive a fork. Export it from an ES module ' +
    'and map it under SPAWN, whose workers are new gjs processes, with ' +
    "pool.mapModule(items, import.meta.url, 'name'); or load a C task with " +
    'Wpool.Task.new_for_symbol()';

/**
 * The error of a pool that cannot run JavaScript functions.
 *
 * @param {Wpool.Pool} pool the pool
 * @returns {GLib.Error} a Wpool.Error.NOT_SUPPORTED error
 */
function notSpawn(pool) {
    const method = Object.keys(Wpool.StartMethod).find(key => Wpool.StartMethod[key] === pool.start_method);
    return new GLib.Error(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED,
        `A JavaScript function runs in new gjs processes, which only a SPAWN pool starts, not a ${method} ` +
        'one: GJS\'s engine does not survive fork() (FORK, FORKSERVER) and runs JavaScript on its ' +
        'main thread only (THREADING). Make the pool with start_method: Wpool.StartMethod.SPAWN');
}

// Typed arrays travel as GVariant arrays of a fixed-size number type, as
// their bytes, with no boxing of each element. GVariant has no signed byte
// nor 32-bit float: those two widen.
const TYPED_ARRAYS = {
    ay: Uint8Array, an: Int16Array, aq: Uint16Array, ai: Int32Array, au: Uint32Array,
    ax: BigInt64Array, at: BigUint64Array, ad: Float64Array,
};
const TYPE_OF_TYPED_ARRAY = new Map([
    ...Object.entries(TYPED_ARRAYS).map(([type, TypedArray]) => [TypedArray, type]),
    [Uint8ClampedArray, 'ay'],
]);
const WIDER = new Map([[Int8Array, Int16Array], [Float32Array, Float64Array]]);

/**
 * Converts a JS value to a GLib.Variant, so that a worker's fromVariant()
 * gives an equal value back: a boolean `b`, a number `d`, a string `s`,
 * null or undefined `mv` (nothing), an Array `av`, a plain object `a{sv}`,
 * a typed array the `a<n>` of its numbers, taken as bytes (an Int8Array
 * becomes an Int16Array, a Float32Array a Float64Array); a GLib.Variant
 * stays as it is, which gives a value an exact GVariant type.
 *
 * @param {*} value the value
 * @returns {GLib.Variant} the value as a GLib.Variant
 * @throws {TypeError} for anything else (functions, class instances, bigints, …)
 */
function toVariant(value) {
    if (value === null || value === undefined)
        return new GLib.Variant('mv', null);
    if (value instanceof GLib.Variant)
        return value;
    switch (typeof value) {
    case 'boolean':
        return new GLib.Variant('b', value);
    case 'number':
        return new GLib.Variant('d', value);
    case 'string':
        return new GLib.Variant('s', value);
    }
    if (Array.isArray(value))
        return new GLib.Variant('av', value.map(toVariant));
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
        const Wider = WIDER.get(value.constructor);
        const array = Wider ? Wider.from(value) : value;
        const type = TYPE_OF_TYPED_ARRAY.get(array.constructor);
        if (type) {
            return GLib.Variant.new_from_bytes(new GLib.VariantType(type),
                new GLib.Bytes(new Uint8Array(array.buffer, array.byteOffset, array.byteLength)), true);
        }
    }
    const prototype = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
    if (prototype === Object.prototype || prototype === null) {
        return new GLib.Variant('a{sv}',
            Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toVariant(item)])));
    }
    throw new TypeError(`Cannot convert ${typeof value === 'object' ? value.constructor?.name ?? 'an object' : `a ${typeof value}`} ` +
        'to a GLib.Variant: give booleans, numbers, strings, null, arrays, typed arrays, plain objects ' +
        'or GLib.Variants');
}

/**
 * Converts a GLib.Variant to a JS value, as toVariant() made it: a
 * fixed-size number array (`ad`, `ai`, `ay`, …) becomes a typed array of
 * its bytes, a dictionary a plain object, any other array or a tuple an
 * Array, a variant or maybe its content (null for nothing), a basic value
 * its JS value.
 *
 * @param {GLib.Variant|null} variant the variant
 * @returns {*} its JS value
 */
function fromVariant(variant) {
    if (variant === null)
        return null;
    const type = variant.get_type_string();
    const TypedArray = TYPED_ARRAYS[type];
    if (TypedArray) {
        const bytes = variant.get_data_as_bytes().toArray();
        const size = TypedArray.BYTES_PER_ELEMENT;
        const length = Math.floor(bytes.byteLength / size);
        // A typed array's view must be aligned to its element size.
        return bytes.byteOffset % size === 0
            ? new TypedArray(bytes.buffer, bytes.byteOffset, length)
            : new TypedArray(bytes.slice(0, length * size).buffer);
    }
    switch (type[0]) {
    case 'v':
        return fromVariant(variant.get_variant());
    case 'm':
        return fromVariant(variant.get_maybe());
    case 'a':
        if (type[1] === '{') {
            return Object.fromEntries(childrenOf(variant).map(entry =>
                [entry.get_child_value(0).unpack(), fromVariant(entry.get_child_value(1))]));
        }
        return childrenOf(variant).map(fromVariant);
    case '(':
    case '{':
        return childrenOf(variant).map(fromVariant);
    default:
        return variant.unpack();
    }
}

/**
 * @param {GLib.Variant} variant a container
 * @returns {GLib.Variant[]} its children
 */
function childrenOf(variant) {
    return Array.from({length: variant.n_children()}, (_, i) => variant.get_child_value(i));
}

/**
 * Whether the module of @importMeta is the program gjs runs, rather than
 * a module imported by it or by a worker: a module that exports a
 * worker's function and runs a program too does the latter under it, as
 * Python's `if __name__ == '__main__'`.
 *
 * @param {ImportMeta} importMeta the module's import.meta
 * @returns {boolean} whether the module is gjs's program
 */
function isMainModule(importMeta) {
    return System.programPath !== null &&
        Gio.File.new_for_uri(importMeta.url).equal(Gio.File.new_for_path(System.programPath));
}

let workerPath = null;

/**
 * The worker program, installed beside this module (in the source tree
 * too). This module loaded from libwpool's GResource has no file beside
 * it: a new gjs process reads its program before anything loads libwpool,
 * so the worker stays the installed file, whose path the resource holds.
 * Not looked for before a JavaScript function is mapped.
 *
 * @returns {string} the path of wpool-worker.js
 */
function getWorkerPath() {
    if (workerPath === null) {
        const beside = name => GLib.Uri.resolve_relative(import.meta.url, name, GLib.UriFlags.NONE);
        if (import.meta.url.startsWith('resource:')) {
            const [, bytes] = Gio.File.new_for_uri(beside('wpool-worker.path')).load_contents(null);
            workerPath = new TextDecoder().decode(bytes).trim();
        } else {
            [workerPath] = GLib.filename_from_uri(beside('wpool-worker.js'));
        }
    }
    return workerPath;
}

/**
 * Makes a task that runs the function @name exports from the ES module
 * at @moduleURL in gjs worker processes, which a SPAWN pool starts. Each
 * worker imports the module once and calls the export as
 * `fn(item, sharedObjects, worker)`; see pool.mapModule().
 *
 * A pool with keep_alive keeps its workers for the same task object only,
 * as for C tasks: reuse it (pool.mapModule() does).
 *
 * @param {string} moduleURL the module's URL (`import.meta.url`) or path
 * @param {string} name the name of the exported function
 * @returns {Wpool.Task} a task of the gjs worker program
 */
function newForModule(moduleURL, name) {
    if (typeof moduleURL !== 'string' || !moduleURL || typeof name !== 'string' || !name)
        throw new TypeError('Give the module\'s URL (import.meta.url) and the export\'s name, as strings');
    const url = Gio.File.new_for_commandline_arg(moduleURL).get_uri();
    return Wpool.Task.new_for_program(['gjs', '-m', getWorkerPath(), url], url, name);
}

/**
 * @param {Wpool.Task} task a task
 * @returns {boolean} whether the task runs a JavaScript export in gjs workers
 */
function isModuleTask(task) {
    const program = task.get_program();
    if (program?.length !== 4 || program[1] !== '-m')
        return false;
    try {
        return program[2] === getWorkerPath();
    } catch {
        return false;
    }
}

// mapModule()'s tasks, one per export: kept-alive workers serve the task
// they started with only.
const moduleTasks = new Map();

/**
 * The GVariant type string of the items: given, or the chunk task's, or
 * guessed from the values: all booleans 'b', all numbers 'd' (as JS numbers
 * are; give {itemType: 'i'} for integers), all strings 's'.
 *
 * @param {Wpool.Task} task the task
 * @param {Array} items the items
 * @param {string} [itemType] a GVariant type string
 * @returns {string} a GVariant type string
 */
function itemTypeOf(task, items, itemType) {
    if (itemType)
        return itemType;
    const declared = task.get_item_type();
    if (declared)
        return declared.dup_string();
    if (items.every(x => typeof x === 'boolean'))
        return 'b';
    if (items.every(x => typeof x === 'number'))
        return 'd';
    if (items.every(x => typeof x === 'string'))
        return 's';
    throw new TypeError('Cannot tell the GVariant type of these items: give it as {itemType: ...}');
}

/**
 * Maps @task over @variant on @pool without blocking the main loop.
 *
 * @param {Wpool.Pool} pool the pool
 * @param {Wpool.Task} task the task
 * @param {GLib.Variant} variant the items
 * @param {Function} unpack makes the results JS values
 * @param {object} options options
 * @param {Function} [options.progress] called as progress(done, total)
 * @param {Gio.Cancellable} [options.cancellable] cancels the map
 * @returns {Promise<Array>} the results
 */
function mapVariant(pool, task, variant, unpack, {progress, cancellable = null}) {
    const handler = progress
        ? pool.connect('notify::n-completed', () => progress(pool.n_completed, pool.n_total))
        : 0;

    return new Promise((resolve, reject) => {
        pool.map_async(task, variant, cancellable, (source, result) => {
            if (handler)
                source.disconnect(handler);
            try {
                resolve(unpack(source.map_finish(result)));
            } catch (error) {
                reject(error);
            }
        });
    });
}

/**
 * Maps a task of newForModule() over @items, converted with toVariant()
 * (or of options.itemType), on a SPAWN pool.
 *
 * @param {Array|TypedArray} items the items
 * @param {Wpool.Task} task a task of newForModule()
 * @param {object} [options] as mapArray()'s
 * @returns {Promise<Array>} the results, converted with fromVariant()
 */
function mapModuleTask(items, task, options = {}) {
    if (this.start_method !== Wpool.StartMethod.SPAWN)
        return Promise.reject(notSpawn(this));
    if (!Array.isArray(items) && !(ArrayBuffer.isView(items) && !(items instanceof DataView)))
        return Promise.reject(new TypeError(`The items must be an array or a typed array, not ${items}`));

    let variant;
    try {
        variant = options.itemType
            ? new GLib.Variant(`a${options.itemType}`, Array.from(items))
            : toVariant(items);
    } catch (error) {
        return Promise.reject(error);
    }
    return mapVariant(this, task, variant, fromVariant, options);
}

/**
 * Maps the function @name exported by the ES module at @moduleURL over
 * @items in the gjs worker processes of this SPAWN pool, without blocking
 * the main loop: a Promise of the results, in item order.
 *
 *     export function square(x) { return x * x; }
 *     const squares = await pool.mapModule([1, 2, 3], import.meta.url, 'square');
 *
 * Each worker imports the module once (its top-level code is the
 * worker's init) and calls the export as `fn(item, sharedObjects,
 * worker)`: the item and the pool's shared objects as toVariant() and
 * fromVariant() carry them, the shared objects converted once per worker,
 * and the Wpool.Worker. An async function's Promise is waited for, with
 * the worker's main loop running; one item at a time all the same. What
 * it throws (or rejects with) fails the map with a GLib.Error: a
 * GLib.Error as it is, any other error as Wpool.Error.FAILED with its
 * message and stack.
 *
 * @param {Array|TypedArray} items the items
 * @param {string} moduleURL the module's URL (`import.meta.url`) or path
 * @param {string} name the name of the exported function
 * @param {object} [options] options
 * @param {string} [options.itemType] the items' GVariant type string, to
 *   send them as that type rather than with toVariant()
 * @param {Function} [options.progress] called as progress(done, total)
 *   as items complete, on the main context
 * @param {Gio.Cancellable} [options.cancellable] cancels the map
 * @returns {Promise<Array>} the results
 */
function mapModule(items, moduleURL, name, options) {
    let task;
    try {
        // The same task each time, so that kept-alive workers serve it again.
        const key = JSON.stringify([moduleURL, name]);
        task = moduleTasks.get(key);
        if (!task) {
            task = newForModule(moduleURL, name);
            moduleTasks.set(key, task);
        }
    } catch (error) {
        return Promise.reject(error);
    }
    return mapModuleTask.call(this, items, task, options);
}

/**
 * Maps @task over the JS array @items on this pool, without blocking the
 * main loop: a Promise of the results as JS values, in item order.
 *
 * @param {Array} items the items, converted to GVariants of itemType
 * @param {Wpool.Task} task a task loaded by symbol, or of newForModule()
 *   (then as pool.mapModule())
 * @param {object} [options] options
 * @param {string} [options.itemType] the items' GVariant type string
 * @param {Function} [options.progress] called as progress(done, total)
 *   as items complete, on the main context
 * @param {Gio.Cancellable} [options.cancellable] cancels the map
 * @returns {Promise<Array>} the results
 */
function mapArray(items, task, options = {}) {
    if (typeof task === 'function')
        return Promise.reject(new GLib.Error(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED, NOT_A_TASK));
    if (!(task instanceof Wpool.Task))
        return Promise.reject(new TypeError(`map() takes a Wpool.Task, not ${task}`));
    if (isModuleTask(task))
        return mapModuleTask.call(this, items, task, options);

    let variant;
    try {
        variant = new GLib.Variant(`a${itemTypeOf(task, items, options.itemType)}`, items);
    } catch (error) {
        return Promise.reject(error);
    }
    return mapVariant(this, task, variant, results => results.recursiveUnpack(), options);
}

/**
 * pool.map(items, task, options): mapArray(); pool.map(task, variant,
 * cancellable): the C API, synchronous.
 *
 * @param {...*} args either form's arguments
 * @returns {Promise<Array>|GLib.Variant} the results
 */
Wpool.Pool.prototype.map = function map(...args) {
    if (Array.isArray(args[0]))
        return mapArray.call(this, ...args);
    if (typeof args[0] === 'function')
        throw new GLib.Error(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED, NOT_A_TASK);
    if (args[0] instanceof Wpool.Task && this.start_method !== Wpool.StartMethod.SPAWN && isModuleTask(args[0]))
        throw notSpawn(this);
    return cMap.call(this, ...args);
};

Wpool.Pool.prototype.mapModule = mapModule;

/**
 * Sets the shared objects as the C API does, from a GLib.Variant or any
 * value toVariant() takes (a JavaScript function's workers get it back
 * with fromVariant(), once each).
 *
 * @param {*} sharedObjects the shared objects, or null for none
 * @returns {boolean} true
 */
Wpool.Pool.prototype.set_shared_objects = function set_shared_objects(sharedObjects) {
    return cSetSharedObjects.call(this, sharedObjects === null || sharedObjects === undefined
        ? null : toVariant(sharedObjects));
};

Wpool.Task.newForModule = newForModule;

export {fromVariant, isMainModule, mapArray, mapModule, newForModule, toVariant};
