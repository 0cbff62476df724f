// SPDX-License-Identifier: LGPL-2.1-or-later
//
// wpool-worker.js: the program of the gjs worker processes that run
// JavaScript functions for a SPAWN pool (wpool.js's pool.mapModule()).
// The pool starts it as
//
//     gjs -m wpool-worker.js MODULE-URL --mode=worker --socket-fd=3 …
//
// It imports the module, then serves the pool: each item it is sent
// becomes a JS value, the export runs on it (and the main loop runs until
// a Promise it returns settles), and the result goes back as a
// GLib.Variant (wpool.js's fromVariant() and toVariant()).

import GLib from 'gi://GLib';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

import {fromVariant, toVariant} from './wpool.js';

const [moduleURL] = System.programArgs;

let exports = null;
let importError = null;

// The shared objects as JS values: converted once, as the worker starts.
let sharedObjects = null;
let sharedConverted = false;

/**
 * @param {number} code a Wpool.Error code
 * @param {string} message the message
 * @returns {GLib.Error} the error
 */
function failure(code, message) {
    return new GLib.Error(Wpool.error_quark(), code, message);
}

/**
 * A thrown value's message and stack, up to the frames of this program,
 * without GJS's module loader; where a syntax error is.
 *
 * @param {*} error what was thrown
 * @returns {string} its description
 */
function describe(error) {
    if (!(error instanceof Error))
        return `${error}`;
    let frames = (error.stack ?? '').split('\n');
    const ours = frames.findIndex(frame => frame.includes(import.meta.url));
    frames = frames.slice(0, ours < 0 ? undefined : ours)
        .filter(frame => frame !== '' && !frame.includes('resource:///org/gnome/gjs/'));
    if (error instanceof SyntaxError && error.fileName)
        frames.unshift(`@${error.fileName}:${error.lineNumber}:${error.columnNumber}`);
    return [`${error}`, ...frames].join('\n');
}

/**
 * Waits for @promise, running the main loop's sources and GJS's Promise
 * jobs meanwhile, as serve() does not.
 *
 * @param {Promise} promise a promise
 * @returns {*} its value
 * @throws {*} its rejection
 */
function settle(promise) {
    let outcome = null;
    promise.then(value => {
        outcome = {value};
    }, error => {
        outcome = {error};
    });
    const context = GLib.MainContext.default();
    while (!outcome)
        context.iteration(true);
    if ('error' in outcome)
        throw outcome.error;
    return outcome.value;
}

/**
 * Runs @fn on one item: an error the pool reports fails it.
 *
 * @param {Function} fn the export
 * @param {string} name its name
 * @param {Wpool.Worker} worker the worker
 * @param {GLib.Variant} item the item
 * @returns {GLib.Variant} the result
 */
function call(fn, name, worker, item) {
    let result;
    try {
        result = fn(fromVariant(item), sharedObjects, worker);
        if (typeof result?.then === 'function')
            result = settle(result);
    } catch (error) {
        // GJS makes a thrown GLib.Error the task's GError, and any other
        // error one of its own domain, with no stack.
        if (error instanceof GLib.Error)
            throw error;
        throw failure(Wpool.Error.FAILED, describe(error));
    }
    try {
        return toVariant(result);
    } catch (error) {
        throw failure(Wpool.Error.INVALID_RESULT, `${name}() returned a value of no GVariant: ${error.message}`);
    }
}

/**
 * The pool's resolver: the export @name of the module this worker imported.
 *
 * @param {string} module the module's URL, as the task gives it
 * @param {string} name the export's name
 * @param {GLib.Variant|null} shared the shared objects
 * @returns {Wpool.Task} the task that runs the export
 * @throws {GLib.Error} if the module or the export cannot be had
 */
function resolve(module, name, shared) {
    if (importError)
        throw failure(Wpool.Error.FAILED, `Cannot import ${moduleURL}: ${describe(importError)}`);
    if (module !== moduleURL) {
        throw failure(Wpool.Error.INVALID_ARGUMENT,
            `This worker imported ${moduleURL}, not ${module}: the pool's tasks must come from one module`);
    }
    const fn = exports[name];
    if (typeof fn !== 'function') {
        throw failure(Wpool.Error.INVALID_ARGUMENT, name in exports
            ? `${moduleURL} exports “${name}” as a ${typeof fn}, not a function`
            : `${moduleURL} does not export “${name}”`);
    }
    if (!sharedConverted) {
        sharedObjects = fromVariant(shared);
        sharedConverted = true;
    }
    return Wpool.Task.new((worker, _shared, item) => call(fn, name, worker, item));
}

/**
 * Serves the pool until it is done with this worker.
 *
 * @returns {number} the worker's exit status
 */
function serve() {
    try {
        // The shared objects are converted once, in resolve(): the worker
        // need not keep them as received as well.
        Wpool.Worker.serve(['gjs', ...System.programArgs],
            Wpool.ServeFlags.NO_FORK | Wpool.ServeFlags.TAKE_SHARED_OBJECTS, resolve);
        return 0;
    } catch (error) {
        // A pool that started the worker was told why it failed.
        if (error.matches?.(Wpool.error_quark(), Wpool.Error.INVALID_ARGUMENT))
            printerr(`wpool-worker.js: ${error.message}`);
        return 1;
    }
}

// The module is imported before serving, as serve() runs no main loop,
// which an import needs; a failure fails the worker's start, from the
// resolver. serve() then runs from a main loop source, not from a Promise
// job (where the rest of a module after a top-level await runs): GJS runs
// no job while another runs, and settle() needs them to.
const loop = new GLib.MainLoop(null, false);
let status = 1;
import(moduleURL).then(namespace => {
    exports = namespace;
}, error => {
    importError = error;
}).finally(() => GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
    status = serve();
    loop.quit();
    return GLib.SOURCE_REMOVE;
}));
loop.run();
System.exit(status);
