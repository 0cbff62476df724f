/* test-vala.vala: the VAPI works: a Vala closure as a task, sync and
 * async map, a thrown error reaching the caller.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

static Variant make_doubles (int n) {
    var builder = new VariantBuilder (new VariantType ("ad"));
    for (int i = 0; i < n; i++)
        builder.add ("d", (double) i);
    return builder.end ();
}

static void test_map () {
    var pool = new Wpool.Pool (2, Wpool.StartMethod.THREADING);
    double factor = 3;
    var task = new Wpool.Task ((worker, shared_objects, item) => {
        return new Variant.double (item.get_double () * factor);
    });
    task.set_result_type (VariantType.DOUBLE);

    try {
        var results = pool.map (task, make_doubles (10));
        assert (results.get_type_string () == "ad");
        for (int i = 0; i < 10; i++)
            assert (results.get_child_value (i).get_double () == i * factor);
    } catch (Error e) {
        assert_no_error (e);
    }
}

static void test_error () {
    var pool = new Wpool.Pool (2, Wpool.StartMethod.THREADING);
    var task = new Wpool.Task ((worker, shared_objects, item) => {
        if (item.get_double () == 4)
            throw new IOError.NOT_FOUND ("no four");
        return item;
    });

    try {
        pool.map (task, make_doubles (8));
        assert_not_reached ();
    } catch (Error e) {
        assert_error (e, IOError.quark (), IOError.NOT_FOUND);
        assert (e.message.has_prefix ("Item 4 on worker "));
        assert (e.message.has_suffix (": no four"));
    }
}

static void test_map_async () {
    var loop = new MainLoop ();
    // A construct-time property: valac refuses `pool.shared_objects = …`
    // after construction; the method says why a change fails.
    var pool = new Wpool.Pool (2, Wpool.StartMethod.THREADING);
    try {
        pool.set_shared_objects (new Variant.double (0.5));
    } catch (Error e) {
        assert_not_reached ();
    }
    var task = new Wpool.Task ((worker, shared_objects, item) => {
        return new Variant.double (item.get_double () + shared_objects.get_double ());
    });
    task.set_result_type (VariantType.DOUBLE);
    Variant? results = null;

    pool.map_async.begin (task, make_doubles (5), null, (obj, res) => {
        try {
            results = pool.map_async.end (res);
        } catch (Error e) {
            assert_no_error (e);
        }
        loop.quit ();
    });
    loop.run ();

    assert (results != null);
    assert (results.n_children () == 5);
    assert (results.get_child_value (4).get_double () == 4.5);
}

int main (string[] args) {
    Test.init (ref args);
    Test.add_func ("/vala/map", test_map);
    Test.add_func ("/vala/error", test_error);
    Test.add_func ("/vala/map-async", test_map_async);
    return Test.run ();
}
