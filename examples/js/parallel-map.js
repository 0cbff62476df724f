// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A CPU-bound JavaScript function in parallel: counts the primes below N
// by ranges, first in a serial loop here, then twice in the gjs worker
// processes of a SPAWN pool, and prints the speedups. The workers import this very
// module for its export countPrimes(); the program below runs only when
// gjs runs this file.
//
//   gjs -m examples/js/parallel-map.js [N [N_JOBS]]    (5000000 and 4: ~1 s serial)

import GLib from 'gi://GLib';
import Wpool from 'gi://Wpool?version=1';
import System from 'system';

// Installed: 'file:///usr/share/wpool-1/js/wpool.js'.
import {isMainModule} from '../../gir/js/wpool.js';

/**
 * How many primes lie in [lo, hi), by trial division: the work of one item.
 *
 * @param {number[]} range the range, as [lo, hi]
 * @returns {number} the number of primes in it
 */
export function countPrimes([lo, hi]) {
    let count = 0;
    for (let n = Math.max(lo, 2); n < hi; n++) {
        let prime = true;
        for (let d = 2; d * d <= n && prime; d++)
            prime = n % d !== 0;
        if (prime)
            count++;
    }
    return count;
}

/**
 * @param {Function} fn what to time
 * @returns {Array} what fn returned, and the seconds it took
 */
async function timed(fn) {
    const start = GLib.get_monotonic_time();
    const result = await fn();
    return [result, (GLib.get_monotonic_time() - start) / GLib.USEC_PER_SEC];
}

async function main(limit, nJobs) {
    // Ranges of equal width: the later ones cost more, and many small ones
    // keep every worker busy to the end.
    const nRanges = 64;
    const ranges = Array.from({length: nRanges},
        (_, i) => [Math.floor(i * limit / nRanges), Math.floor((i + 1) * limit / nRanges)]);
    const sum = counts => counts.reduce((a, b) => a + b, 0);

    const [serial, serialTime] = await timed(() => sum(ranges.map(countPrimes)));
    print(`${serial} primes below ${limit}`);
    print(`serial loop:                ${serialTime.toFixed(2)} s`);

    // The first map starts the workers, some 50 ms of CPU each; kept
    // alive, they serve the second one at once.
    const pool = new Wpool.Pool({n_jobs: nJobs, start_method: Wpool.StartMethod.SPAWN, keep_alive: true});
    const counts = [];
    for (const what of [`${nJobs} new SPAWN workers:`, 'the same, kept alive:']) {
        // eslint-disable-next-line no-await-in-loop
        const [count, time] = await timed(async () =>
            sum(await pool.mapModule(ranges, import.meta.url, 'countPrimes')));
        print(`${what.padEnd(27)} ${time.toFixed(2)} s, ${(serialTime / time).toFixed(2)}× as fast`);
        counts.push(count);
    }
    pool.keep_alive = false;

    if (counts.some(count => count !== serial)) {
        printerr(`The workers counted ${counts} primes`);
        return 1;
    }
    return 0;
}

if (isMainModule(import.meta)) {
    const [limit = 5_000_000, nJobs = 4] = System.programArgs.map(Number);
    const loop = new GLib.MainLoop(null, false);
    let status = 1;
    main(limit, nJobs).then(result => {
        status = result;
    }).catch(error => {
        printerr(`${error}\n${error.stack ?? ''}`);
    }).finally(() => loop.quit());
    loop.run();
    System.exit(status);
}
