// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The JavaScript functions that test-gjs.js maps in gjs worker processes
// (wpool.js's pool.mapModule()). Importing it runs nothing.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';

const pid = () => new Gio.Credentials().get_unix_pid();

export function square(x) {
    return x * x;
}

// A value as it arrived, with the classes of its parts, to see the
// conversions both ways.
export function echo(item) {
    return {item, kind: item?.constructor?.name ?? null};
}

let calls = 0;
let lastShared;
let sharedSeen = 0;

// Where the item ran, the shared objects, how many distinct shared
// objects the worker was given (1: converted once), and how many items the
// worker's module ran.
export function whoami(item, shared, worker) {
    if (shared !== lastShared) {
        lastShared = shared;
        sharedSeen++;
    }
    GLib.usleep(item * 1000);
    return {pid: pid(), worker: worker.get_id(), shared, sharedSeen, calls: ++calls};
}

export function sleepMs(ms) {
    GLib.usleep(ms * 1000);
    return ms;
}

export function failOnNegative(x) {
    if (x < 0)
        throw new RangeError(`negative item ${x}`);
    return x;
}

export function throwGError(x) {
    throw new GLib.Error(Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_ARGUMENT, `no ${x}`);
}

// Async: the worker runs its main loop, with GLib sources and Promise
// jobs, until the promise settles.
export async function later(x) {
    await new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, 5, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
    await null;
    if (x < 0)
        throw new RangeError(`negative item ${x}, later`);
    return x * 2;
}

export function unconvertible() {
    return new Map();
}

// Item 1 ends the worker: by exit(3), or by SIGKILL from kill(1).
export function exitOnOne(x) {
    if (x === 1)
        System.exit(3);
    return x;
}

export function killOnOne(x) {
    if (x === 1) {
        GLib.spawn_sync(null, ['kill', '-KILL', `${pid()}`], null, GLib.SpawnFlags.SEARCH_PATH, null);
        GLib.usleep(30 * GLib.USEC_PER_SEC);
    }
    return x;
}

export const notAFunction = 42;
