// SPDX-License-Identifier: LGPL-2.1-or-later
//
// smoke.js: libwpool's GJS module from an installed prefix, imported by
// its resource URL as doc/installing.md says: a C task of the module
// beside this file (libsmoke-tasks.so) under every start method, and a
// JavaScript function of this module (mapModule()) under SPAWN, whose gjs
// workers run the installed wpool-worker.js and import this module too.
// Installed with -Dinstalled_tests; gnome-desktop-testing-runner runs it.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

import {runTests} from './tap.js';

void Wpool.Pool;  // loads libwpool, which holds wpool.js
const {isMainModule, newForModule} = await import('resource:///org/gnome/Wpool/js/wpool.js');

export function cube(x) {
    return {cube: x * x * x, pid: new Gio.Credentials().get_unix_pid()};
}

function assertEqual(actual, expected, message) {
    const a = JSON.stringify(actual), e = JSON.stringify(expected);
    if (a !== e)
        throw new Error(`${message}: expected ${e}, got ${a}`);
}

const METHODS = ['THREADING', 'FORK', 'SPAWN', 'FORKSERVER'];

const tests = {
    async 'C task by symbol under every start method'() {
        const module = GLib.filename_from_uri(
            GLib.Uri.resolve_relative(import.meta.url, 'libsmoke-tasks.so', GLib.UriFlags.NONE))[0];
        const task = Wpool.Task.new_for_symbol(module, 'smoke_square');
        task.set_result_type(new GLib.VariantType('d'));
        for (const method of METHODS) {
            const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod[method]});
            assertEqual(await pool.map([1, 2, 3, 4], task), [1, 4, 9, 16], method);
        }
    },

    async 'JavaScript function of this module under SPAWN'() {
        // wpool.js of the resource runs the installed worker program.
        const [, , worker] = newForModule(import.meta.url, 'cube').get_program();
        if (!worker.endsWith('/share/wpool-1/js/wpool-worker.js') || !GLib.file_test(worker, GLib.FileTest.IS_REGULAR))
            throw new Error(`the worker program is ${worker}, not the installed wpool-worker.js`);
        const pool = new Wpool.Pool({n_jobs: 2, start_method: Wpool.StartMethod.SPAWN});
        const results = await pool.mapModule([1, 2, 3], import.meta.url, 'cube');
        assertEqual(results.map(r => r.cube), [1, 8, 27], 'mapModule');
        const self = new Gio.Credentials().get_unix_pid();
        if (results.some(r => r.pid === self))
            throw new Error('a JavaScript function ran in the caller, not in a gjs worker');
    },
};

// After the top-level await above, GJS runs the main loop while this
// module awaits; a GLib.MainLoop of its own would run no Promise job.
if (isMainModule(import.meta))
    System.exit(await runTests(tests) ? 1 : 0);
