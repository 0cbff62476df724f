# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Big buffers that cross to worker processes in shared memory instead of
# in a pickle: numpy arrays, bytes, bytearrays, memoryviews and
# array.arrays, wherever they are in what is pickled. The pickler's
# persistent_id() finds them (the C pickler calls it for every object,
# where reducer_override() never sees a `bytes`) and writes their bytes
# into a memfd of the caller's; the pickle holds a persistent id, ('wpool-
# buffer', source, kind, offset, size, details), which the worker's
# persistent_load() turns back into the buffer, over its mapping of that
# memfd (the caller's descriptor opened again from /proc, as
# multiprocessing's shared memory is). 'mpi' workers, which may be on
# other machines, get the pickle.
#
# Shared objects ('spawn' and 'forkserver'; under 'threading' and 'fork'
# the workers see the caller's own objects): buffers of at least MIN_SIZE
# go once into a memfd sealed against writes, which every worker (or the
# fork server, once, for all its workers) maps read-only: no copy per
# worker, and a write is refused. A Wpool.SharedArray in them, the writable
# way, goes as its memfd: the worker makes an array over the same memory
# (SharedArray.new_for_fd()).
#
# Items ('fork', 'spawn' and 'forkserver'): buffers of at least
# ITEM_MIN_SIZE are written into the map's memfds (ItemBuffers), which the
# worker maps copy-on-write: one copy in, none out, and each item behaves
# as a copy, writable, as a pickled one is. bytes, bytearrays and
# array.arrays are copied out of the mapping in the worker (they own their
# memory); numpy arrays and memoryviews are views of it.

import array
import fcntl
import gc
import io
import itertools
import mmap
import os
import sys
import weakref

# Smaller buffers are pickled as they are: a copy of a few pages is
# cheaper than a mapping, or, for items, than a write.
MIN_SIZE = 64 * 1024
ITEM_MIN_SIZE = 16 * 1024
# A map's items go to memfds of this size (or one buffer's, if bigger),
# each closed once every batch with buffers in it is done.
SEGMENT_SIZE = 64 * 1024 * 1024
# Where buffers start in an item memfd: numpy's widest alignment.
_ALIGN = 64
_NAME = 'wpool-shared-objects'
_ITEMS_NAME = 'wpool-items'
# What marks a batch pickled by ItemBuffers.dumps().
_ITEMS_MARK = 'wpool-item-buffers'
_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
_serials = itertools.count(1)


def _castable(view, fmt, shape):
    """Whether a flat byte view can be given @fmt and @shape again, which
    memoryview allows for native single-character formats only."""
    try:
        view.cast(fmt, shape)
    except (TypeError, ValueError):
        return False
    return True


class _Buffers:
    """The caller's side: a pickler's persistent_id() that sends the
    buffers of at least @min_size of the kinds of @kinds (exact type ->
    kind) through _place(), which subclasses define, under their TAG."""

    TAG = 'wpool-buffer'

    def __init__(self, kinds, min_size):
        self.count = 0
        self.min_size = min_size
        # id() -> (object, its persistent id): an object met twice goes
        # once, and stays alive while pickling.
        self._seen = {}
        self._kinds = dict(kinds)
        numpy = sys.modules.get('numpy')
        if numpy is not None:
            self._kinds[numpy.ndarray] = 'ndarray'

    def persistent_id(self, obj):
        kind = self._kinds.get(type(obj))
        if kind is None:
            return None
        seen = self._seen.get(id(obj))
        if seen is not None:
            return seen[1]
        found = getattr(self, '_bytes_of_' + _FLAT[kind])(obj)
        if found is None:
            return None
        data, details = found
        source, offset = self._place(data)
        pid = self._pid(source, kind, offset, data.nbytes, details)
        self.count += 1
        self._seen[id(obj)] = (obj, pid)
        return pid

    def _pid(self, source, kind, offset, size, details):
        return (self.TAG, source, kind, offset, size, details)

    # Each kind's bytes, as a flat memoryview, and what rebuilds it; None
    # for a buffer pickled as it is.

    def _bytes_of_bytes(self, obj):
        return (memoryview(obj), None) if len(obj) >= self.min_size else None

    def _bytes_of_memoryview(self, obj):
        return _flat_memoryview(obj) if obj.nbytes >= self.min_size else None

    def _bytes_of_array(self, obj):
        if len(obj) * obj.itemsize < self.min_size:
            return None
        data = memoryview(obj)
        return (data.cast('B'), obj.typecode) if _castable(data.cast('B'), obj.typecode, [len(obj)]) else None

    def _bytes_of_ndarray(self, obj):
        import numpy

        if obj.nbytes < self.min_size or obj.dtype.hasobject:
            return None
        # Fortran order stays; anything strided is copied in C order.
        order = 'F' if obj.flags.f_contiguous and not obj.flags.c_contiguous else 'C'
        if not obj.flags.c_contiguous and not obj.flags.f_contiguous:
            obj = numpy.ascontiguousarray(obj)
        # As bytes: numpy exports no buffer of some dtypes (datetimes).
        data = memoryview(obj.ravel(order=order).view(numpy.uint8))
        return data, (obj.dtype, obj.shape, order)


def _flat_memoryview(obj):
    # A strided view is copied in C order first.
    data = memoryview(obj.cast('B') if obj.c_contiguous else obj.tobytes())
    return (data, (obj.format, obj.shape)) if _castable(data, obj.format, obj.shape) else None


# Which _bytes_of_ method flattens a kind.
_FLAT = {'bytes': 'bytes', 'bytearray': 'bytes', 'memoryview': 'memoryview', 'array': 'array',
         'ndarray': 'ndarray'}


def _new_memfd(name, sealing):
    return os.memfd_create(name, os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealing else 0))


def _write(fd, data, offset):
    done = 0
    while done < data.nbytes:
        done += os.pwrite(fd, data[done:], offset + done)


class SharedBuffers(_Buffers):
    """The memfd the big buffers of one pickling of the shared objects go
    to, which this object keeps open until it goes (the pool drops it when
    its shared objects change, or as it goes). bytes and bytearrays both
    arrive as read-only memoryviews."""

    def __init__(self):
        super().__init__({bytes: 'bytes', bytearray: 'bytes', memoryview: 'memoryview', array.array: 'array'},
                         MIN_SIZE)
        self.fd = -1
        # Duplicates of the memfds of the shared arrays in them.
        self.array_fds = []
        weakref.finalize(self, _close_all, self.array_fds)
        self.size = 0
        self.name = '{}-{}-{}'.format(_NAME, os.getpid(), next(_serials))
        self._source = None

    def reduce_shared_array(self, shared_array):
        """A Wpool.SharedArray as its memfd, which this object keeps open
        for workers to open from /proc."""
        fd, _ = shared_array.dup_fd()
        self.array_fds.append(fd)
        return _open_shared_array, (os.getpid(), fd, tuple(shared_array.get_handle().unpack()))

    def _place(self, data):
        """Writes @data at the end of the memfd, made at the first buffer,
        a page each: where workers find it, and at which offset."""
        if self.fd < 0:
            self.fd = _new_memfd(self.name, sealing=True)
            weakref.finalize(self, os.close, self.fd)
            self._source = (os.getpid(), self.fd, self.name)
        offset = self.size
        _write(self.fd, data, offset)
        self.size += (data.nbytes + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        return self._source, offset

    def seal(self):
        """Makes the memfd read-only and of fixed size for good: no worker,
        nor the caller, can change what the others read."""
        if self.fd >= 0:
            os.ftruncate(self.fd, self.size)
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, _SEALS)
        self._seen = None


class _Segment:
    """A memfd of items' buffers: where workers find it, the bytes written
    in it, and how many batches not done have buffers in it."""

    def __init__(self):
        name = '{}-{}-{}'.format(_ITEMS_NAME, os.getpid(), next(_serials))
        self.fd = _new_memfd(name, sealing=False)
        self.source = (os.getpid(), self.fd, name)
        self.size = 0
        self.pending = 0
        _segments.add(self)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# Every open _Segment of this process.
_segments = weakref.WeakSet()


def _forget_segments():
    """In a child of os.fork() (a FORK template, and the workers it forks,
    through Wpool.set_fork_func()): the caller's memfds are not the child's
    to keep, which would hold their pages once the caller closed them.
    Its workers open them from the caller's /proc."""
    for segment in list(_segments):
        segment.close()


os.register_at_fork(after_in_child=_forget_segments)


def _close_segments(segments):
    for segment in segments:
        segment.close()
    segments.clear()


class Spares:
    """A pool's item memfds that no batch needs any more, kept for its next
    batches: writing into the pages a memfd has costs half what new pages
    do, and freeing them a fifth more (bench/README.md). At most MAX are
    kept, and they go with the pool."""

    MAX = 4

    def __init__(self):
        self.segments = []
        weakref.finalize(self, _close_segments, self.segments)

    def take(self):
        return self.segments.pop() if self.segments else _Segment()

    def close(self):
        _close_segments(self.segments)

    def give(self, segment):
        # One that took a buffer far bigger than SEGMENT_SIZE is not kept:
        # its pages would stay with the pool, and only SEGMENT_SIZE of them
        # be used again.
        if len(self.segments) < self.MAX and os.fstat(segment.fd).st_size <= 2 * SEGMENT_SIZE:
            segment.size = segment.pending = 0
            self.segments.append(segment)
        else:
            segment.close()


class ItemBuffers(_Buffers):
    """The caller's side for the items of one map: the memfds their big
    buffers go to as its batches are pickled (dumps()), taken from the
    pool's Spares. A memfd goes back once every batch with buffers in it is
    done (done()), which its worker says once it let go of them
    (release()): a batch handed out again, its worker having died, finds
    its buffers still there. As the map ends (close()), one that a batch
    not done may still be read from is closed instead.

    A batch's persistent ids are indexes into a table of its buffers,
    pickled beside it: the C pickler calls persistent_id() for each member
    of a tuple id too."""

    def __init__(self, spares):
        super().__init__({bytes: 'bytes', bytearray: 'bytearray', memoryview: 'memoryview', array.array: 'array'},
                         ITEM_MIN_SIZE)
        self._spares = spares
        # The memfd buffers go to now, and all those taken.
        self._segment = None
        self._taken = []
        self._finalizer = weakref.finalize(self, _close_segments, self._taken)
        # The memfds of the batch being pickled, and of each batch not done.
        self._touched = set()
        self._batches = {}
        # The buffers of the batch being pickled: (source, kind, offset,
        # size, details).
        self._table = []
        # Bytes written in all.
        self.n_bytes = 0

    def _bytes_of_memoryview(self, obj):
        # Whatever its size: pickle refuses a memoryview.
        return _flat_memoryview(obj)

    def _pid(self, source, kind, offset, size, details):
        self._table.append((source, kind, offset, size, details))
        return len(self._table) - 1

    @property
    def kinds(self):
        """The exact types of the objects that may go to a memfd."""
        return self._kinds.keys()

    def dumps(self, codec, obj, index):
        """@obj pickled by @codec, its big buffers written to the memfds as
        those of batch @index: a pickle of (_ITEMS_MARK, their table, the
        pickle of @obj), which loads_batch() reads."""
        file = io.BytesIO()
        pickler = codec.Pickler(file)
        pickler.persistent_id = self.persistent_id
        self._touched = set()
        self._table = []
        try:
            pickler.dump(obj)
        finally:
            # An object met again in another batch goes again: the first
            # may be done and its memfd reused by then.
            self._seen = {}
        for segment in self._touched:
            segment.pending += 1
        if self._touched:
            self._batches[index] = self._touched
        return codec.dumps((_ITEMS_MARK, self._table, file.getvalue()))

    def _place(self, data):
        segment = self._segment
        if segment is None or segment.size >= SEGMENT_SIZE:
            self._retire()
            segment = self._segment = self._spares.take()
            self._taken.append(segment)
        offset = (segment.size + _ALIGN - 1) // _ALIGN * _ALIGN
        _write(segment.fd, data, offset)
        segment.size = offset + data.nbytes
        self._touched.add(segment)
        self.n_bytes += data.nbytes
        return segment.source, offset

    def _retire(self):
        """No more buffers go to the current memfd: it goes back once done.
        The batch being pickled may have buffers in it already, which count
        only once it is pickled."""
        segment, self._segment = self._segment, None
        if segment is not None and segment.pending == 0 and segment not in self._touched:
            self._give(segment)

    def _give(self, segment):
        self._taken.remove(segment)
        self._spares.give(segment)

    def done(self, index):
        """Batch @index is done: a memfd that no batch needs any more goes
        back, unless buffers still go to it."""
        for segment in self._batches.pop(index, ()):
            segment.pending -= 1
            if segment.pending == 0 and segment is not self._segment:
                self._give(segment)

    def close(self):
        self._segment = None
        self._batches.clear()
        for segment in list(self._taken):
            if segment.pending == 0:
                self._give(segment)
        self._finalizer()


def _close_all(fds):
    for fd in fds:
        os.close(fd)
    fds.clear()


def _open_proc_fd(pid, fd, flags, what='The shared objects\''):
    try:
        return os.open('/proc/{}/fd/{}'.format(pid, fd), flags | os.O_CLOEXEC)
    except OSError as error:
        raise RuntimeError('{} buffers cannot be opened: process {} holds them no more '
                           '({})'.format(what, pid, error)) from None


def _open_shared_array(pid, fd, handle):
    """The worker's side of reduce_shared_array(): an array over the same
    memory as the caller's."""
    from . import Wpool

    shared_array = Wpool.SharedArray.new_for_fd(_open_proc_fd(pid, fd, os.O_RDWR))
    # The caller may have closed it and opened another array there.
    if tuple(shared_array.get_handle().unpack()) != handle:
        raise RuntimeError('The shared objects\' array is gone from process {}'.format(pid))
    return shared_array


# A shared array's elements as memoryview formats.
_FORMATS = {'int32': 'i', 'int64': 'q', 'uint8': 'B', 'float': 'f', 'double': 'd'}


def shared_array_data(shared_array):
    """A writable memoryview of a Wpool.SharedArray's elements: its memfd
    mapped shared, the elements themselves."""
    fd, offset = shared_array.dup_fd()
    fmt = _FORMATS[shared_array.get_element_type().value_nick]
    end = offset + shared_array.get_length() * memoryview(b'').cast(fmt).itemsize
    try:
        mapping = mmap.mmap(fd, end)
    finally:
        os.close(fd)
    return memoryview(mapping)[offset:end].cast(fmt)


def _map(source, items):
    """The caller's memfd @source, mapped: shared objects' read-only and
    shared, items' copy-on-write. The caller's descriptor is opened again
    from /proc and checked to be that memfd, sealed for shared objects."""
    pid, fd, name = source
    what = 'The items\'' if items else 'The shared objects\''
    own = _open_proc_fd(pid, fd, os.O_RDONLY, what)
    try:
        # The caller may have closed it and opened something else there.
        if os.readlink('/proc/self/fd/{}'.format(own)) != '/memfd:{} (deleted)'.format(name) or \
                (not items and fcntl.fcntl(own, fcntl.F_GET_SEALS) & _SEALS != _SEALS):
            raise RuntimeError('{} buffers are gone from process {}: its descriptor {} is another file '
                               'now'.format(what, pid, fd))
        if items:
            return mmap.mmap(own, os.fstat(own).st_size, flags=mmap.MAP_PRIVATE,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        return mmap.mmap(own, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(own)


class _Mapped:
    """A memfd mapped for a pickle, and where the buffers rebuilt from it
    are (for release())."""

    __slots__ = ('mapping', 'ranges')

    def __init__(self, mapping):
        self.mapping = mapping
        self.ranges = []


def _rebuild(source, kind, offset, size, details, mappings, items):
    """A buffer, from its memfd: of the shared objects, a read-only view;
    of @items, a private copy (a view of a copy-on-write mapping for numpy
    arrays and memoryviews)."""
    mapped = mappings.get(source)
    if mapped is None:
        mapped = mappings[source] = _Mapped(_map(source, items))
    mapping = mapped.mapping
    if items:
        mapped.ranges.append((offset, size))
    if offset + size > len(mapping):
        raise ValueError('The buffers of process {} are shorter than they say'.format(source[0]))
    data = memoryview(mapping)[offset:offset + size]
    if kind == 'bytes':
        return bytes(data) if items else data
    if kind == 'bytearray':
        return bytearray(data)
    if kind == 'memoryview':
        fmt, shape = details
        return data.cast(fmt, shape)
    if kind == 'array':
        if not items:
            return data.cast(details)
        copy = array.array(details)
        copy.frombytes(data)
        return copy
    import numpy

    dtype, shape, order = details
    return numpy.frombuffer(data, dtype=dtype).reshape(shape, order=order)


# Each codec's unpickler of persistent ids.
_unpicklers = {}


def _unpickler(codec):
    unpickler = _unpicklers.get(codec)
    if unpickler is None:
        class Unpickler(codec.Unpickler):
            def persistent_load(self, pid):
                # An object met twice in the caller's is one object here too.
                view = self.wpool_views.get(pid)
                if view is not None:
                    return view
                if type(pid) is int:
                    view = _rebuild(*self.wpool_table[pid], self.wpool_mappings, True)
                elif pid[0] == _Buffers.TAG:
                    view = _rebuild(*pid[1:], self.wpool_mappings, False)
                else:
                    raise ValueError('Unknown persistent id in a pickle: {!r}'.format(pid[0]))
                self.wpool_views[pid] = view
                return view

        unpickler = _unpicklers[codec] = Unpickler
    return unpickler


def _load(codec, data, mappings, table=None):
    unpickler = _unpickler(codec)(io.BytesIO(data))
    unpickler.wpool_mappings = mappings
    unpickler.wpool_table = table
    unpickler.wpool_views = {}
    return unpickler.load()


def loads(codec, data):
    """The shared objects unpickled with @codec (pickle or dill), their big
    buffers views of the caller's memfd, mapped once per loads()."""
    if _Buffers.TAG.encode() not in data:
        return codec.loads(data)
    return _load(codec, data, {})


def loads_batch(codec, data, mappings):
    """A batch unpickled with @codec, as ItemBuffers.dumps() pickled it or
    as pickled plainly. @mappings (a dict) gets the memfds mapped for its
    buffers, for release() once the batch is done."""
    batch = codec.loads(data)
    if type(batch) is tuple and len(batch) == 3 and type(batch[0]) is str and batch[0] == _ITEMS_MARK:
        _, table, pickled = batch
        batch = _load(codec, pickled, mappings, table)
    return batch


def _privatize(mapped):
    """Makes the pages of the buffers of a copy-on-write mapping this
    process's own, by writing each once: what the file holds next does not
    show through."""
    view = memoryview(mapped.mapping)
    try:
        for offset, size in mapped.ranges:
            for page in range(offset - offset % mmap.PAGESIZE, offset + size, mmap.PAGESIZE):
                view[page] = view[page]
    finally:
        view.release()


def release(mappings):
    """A batch is done, and its results pickled: the memfds it mapped are
    unmapped, before the caller writes other batches' buffers into them.
    Where the function kept a view of one (in the worker's state, or in an
    exception's traceback), the pages of the batch's buffers are made the
    worker's own first, so that the view keeps what the batch had."""
    kept = []
    for mapped in mappings.values():
        try:
            mapped.mapping.close()
        except BufferError:
            kept.append(mapped)
    if kept:
        # A failure's traceback holds the batch in a cycle.
        gc.collect()
        for mapped in kept:
            try:
                mapped.mapping.close()
            except BufferError:
                _privatize(mapped)
    mappings.clear()
