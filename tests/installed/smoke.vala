/* smoke.vala: libwpool's Vala bindings from an installed prefix: a C task
 * of the module beside this program (libsmoke-tasks.so, through
 * G_TEST_BUILT, the program's own directory) mapped in worker threads and
 * in spawned workers. Installed with -Dinstalled_tests; scripts/test-installed
 * also compiles it with valac from the prefix, as doc/installing.md says.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

static void map_squares (Wpool.StartMethod method) {
    var module = Test.build_filename (Test.FileType.BUILT, "libsmoke-tasks.so");
    var builder = new VariantBuilder (new VariantType ("ad"));
    for (int i = 1; i <= 5; i++)
        builder.add ("d", (double) i);

    try {
        var task = new Wpool.Task.for_symbol (module, "smoke_square");
        task.set_result_type (VariantType.DOUBLE);
        var pool = new Wpool.Pool (2, method);
        var results = pool.map (task, builder.end ());
        assert (results.get_type_string () == "ad");
        assert (results.n_children () == 5);
        for (int i = 0; i < 5; i++)
            assert (results.get_child_value (i).get_double () == (i + 1) * (i + 1));
    } catch (Error e) {
        assert_no_error (e);
    }
}

static void test_threading () {
    map_squares (Wpool.StartMethod.THREADING);
}

static void test_spawn () {
    map_squares (Wpool.StartMethod.SPAWN);
}

int main (string[] args) {
    Test.init (ref args);
    Test.add_func ("/installed/vala/map/threading", test_threading);
    Test.add_func ("/installed/vala/map/spawn", test_spawn);
    return Test.run ();
}
