// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The TAP runner of the GJS tests, in the source tree (test-gjs.js) and
// installed beside the installed GJS test (smoke.js).

// Runs the async functions of @tests one after the other, printing TAP
// (an error's message and stack as diagnostics); resolves to how many
// failed.
export async function runTests(tests) {
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
