// SPDX-License-Identifier: LGPL-2.1-or-later
//
// wpool.js: libwpool for GJS with JavaScript values. Importing it gives
// Wpool.Pool a Promise-based map over JS arrays:
//
//     import Wpool from 'gi://Wpool?version=1';
//     import 'file:///usr/share/libwpool-1/js/wpool.js';  // installed path
//
//     const pool = new Wpool.Pool({n_jobs: 4, start_method: Wpool.StartMethod.FORK});
//     const task = Wpool.Task.new_for_symbol('libmytasks.so', 'square');
//     const squares = await pool.map([1, 2, 3], task, {progress: (done, total) => …});
//
// Items are converted to a GLib.Variant array for the C pool, of the task's
// item type or the one given, and results back to JS values. The C API is
// unchanged: pool.map(task, variant, cancellable) with a Wpool.Task first
// still maps synchronously.
//
// A task is C code, loaded by symbol: GJS runs JavaScript on its main
// thread only, and its engine does not survive a fork, so a JavaScript
// function cannot run in a worker of any start method.

import GLib from 'gi://GLib';
import Wpool from 'gi://Wpool?version=1';

const {map: cMap} = Wpool.Pool.prototype;

const NOT_A_TASK = 'A JavaScript function cannot be a task: GJS runs JavaScript on its main ' +
    'thread only, and its engine does not survive a fork. Load the task from a C library ' +
    'with Wpool.Task.new_for_symbol() (or new_for_chunk_symbol())';

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
 * Maps @task over the JS array @items on this pool, without blocking the
 * main loop: a Promise of the results as JS values, in item order.
 *
 * @param {Array} items the items, converted to GVariants of itemType
 * @param {Wpool.Task} task a task loaded by symbol
 * @param {object} [options] options
 * @param {string} [options.itemType] the items' GVariant type string
 * @param {Function} [options.progress] called as progress(done, total)
 *   as items complete, on the main context
 * @param {Gio.Cancellable} [options.cancellable] cancels the map
 * @returns {Promise<Array>} the results
 */
function mapArray(items, task, {itemType, progress, cancellable = null} = {}) {
    if (typeof task === 'function')
        return Promise.reject(new GLib.Error(Wpool.error_quark(), Wpool.Error.NOT_SUPPORTED, NOT_A_TASK));
    if (!(task instanceof Wpool.Task))
        return Promise.reject(new TypeError(`map() takes a Wpool.Task, not ${task}`));

    let variant;
    try {
        variant = new GLib.Variant(`a${itemTypeOf(task, items, itemType)}`, items);
    } catch (error) {
        return Promise.reject(error);
    }

    const handler = progress
        ? this.connect('notify::n-completed', () => progress(this.n_completed, this.n_total))
        : 0;

    return new Promise((resolve, reject) => {
        this.map_async(task, variant, cancellable, (pool, result) => {
            if (handler)
                pool.disconnect(handler);
            try {
                resolve(pool.map_finish(result).recursiveUnpack());
            } catch (error) {
                reject(error);
            }
        });
    });
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
    return cMap.call(this, ...args);
};

export {mapArray};
