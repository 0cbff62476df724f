# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Big buffers of the shared objects of 'spawn' and 'forkserver' workers,
# in shared memory: numpy arrays, bytes, bytearrays, memoryviews and
# array.arrays of at least MIN_SIZE bytes, wherever they are in the shared
# objects, are written once into a memfd of the caller's, sealed against
# writes, instead of into the pickle. A worker (or the fork server, once,
# for all its workers) maps that memfd read-only, opening the caller's
# descriptor again from /proc as it does for multiprocessing's shared
# memory, and gets views of it: no copy per worker. Under 'threading' and
# 'fork' the workers see the caller's own objects and nothing of this
# runs; 'mpi' workers, which may be on other machines, get the pickle.
#
# A Wpool.SharedArray in them, the writable way, goes as its memfd: the
# worker makes an array over the same memory (SharedArray.new_for_fd()).
#
# The pickler's persistent_id() finds them: the C pickler calls it for
# every object, where reducer_override() never sees a `bytes`. A buffer
# becomes a persistent id, ('wpool-buffer', source, kind, offset, size,
# details), which the worker's persistent_load() turns into a view.

import array
import fcntl
import io
import itertools
import mmap
import os
import sys
import weakref

# Smaller buffers are pickled as they are: a copy of a few pages is
# cheaper than a mapping.
MIN_SIZE = 64 * 1024
_NAME = 'wpool-shared-objects'
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


class SharedBuffers:
    """The caller's side: the memfd the big buffers of one pickling of the
    shared objects go to, which this object keeps open until it goes (the
    pool drops it when its shared objects change, or as it goes)."""

    def __init__(self):
        self.fd = -1
        # Duplicates of the memfds of the shared arrays in them.
        self.array_fds = []
        weakref.finalize(self, _close_all, self.array_fds)
        self.size = 0
        self.count = 0
        self.name = '{}-{}-{}'.format(_NAME, os.getpid(), next(_serials))
        self._source = None
        # id() -> (object, its persistent id): an object met twice goes
        # once, and stays alive while pickling.
        self._seen = {}
        self._kinds = {bytes: 'bytes', bytearray: 'bytes', memoryview: 'memoryview', array.array: 'array'}
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
        found = getattr(self, '_bytes_of_' + kind)(obj)
        if found is None:
            return None
        data, details = found
        pid = ('wpool-buffer', self._place(data), kind, self.size, data.nbytes, details)
        self.size += (data.nbytes + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        self.count += 1
        self._seen[id(obj)] = (obj, pid)
        return pid

    # Each kind's bytes, as a flat memoryview, and what rebuilds it; None
    # for a buffer pickled as it is.

    @staticmethod
    def _bytes_of_bytes(obj):
        return (memoryview(obj), None) if len(obj) >= MIN_SIZE else None

    @staticmethod
    def _bytes_of_memoryview(obj):
        if obj.nbytes < MIN_SIZE:
            return None
        # A strided view is copied in C order first.
        data = memoryview(obj.cast('B') if obj.c_contiguous else obj.tobytes())
        return (data, (obj.format, obj.shape)) if _castable(data, obj.format, obj.shape) else None

    @staticmethod
    def _bytes_of_array(obj):
        if len(obj) * obj.itemsize < MIN_SIZE:
            return None
        data = memoryview(obj)
        return (data.cast('B'), obj.typecode) if _castable(data.cast('B'), obj.typecode, [len(obj)]) else None

    @staticmethod
    def _bytes_of_ndarray(obj):
        import numpy

        if obj.nbytes < MIN_SIZE or obj.dtype.hasobject:
            return None
        # Fortran order stays; anything strided is copied in C order.
        order = 'F' if obj.flags.f_contiguous and not obj.flags.c_contiguous else 'C'
        if not obj.flags.c_contiguous and not obj.flags.f_contiguous:
            obj = numpy.ascontiguousarray(obj)
        # As bytes: numpy exports no buffer of some dtypes (datetimes).
        data = memoryview(obj.ravel(order=order).view(numpy.uint8))
        return data, (obj.dtype, obj.shape, order)

    def reduce_shared_array(self, shared_array):
        """A Wpool.SharedArray as its memfd, which this object keeps open
        for workers to open from /proc."""
        fd, _ = shared_array.dup_fd()
        self.array_fds.append(fd)
        return _open_shared_array, (os.getpid(), fd, tuple(shared_array.get_handle().unpack()))

    def _place(self, data):
        """Writes @data at the end of the memfd, made at the first buffer;
        the source of the persistent ids: where workers find the memfd."""
        if self.fd < 0:
            self.fd = os.memfd_create(self.name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            weakref.finalize(self, os.close, self.fd)
            self._source = (os.getpid(), self.fd, self.name)
        done = 0
        while done < data.nbytes:
            done += os.pwrite(self.fd, data[done:], self.size + done)
        return self._source

    def seal(self):
        """Makes the memfd read-only and of fixed size for good: no worker,
        nor the caller, can change what the others read."""
        if self.fd >= 0:
            os.ftruncate(self.fd, self.size)
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, _SEALS)
        self._seen = None


def _close_all(fds):
    for fd in fds:
        os.close(fd)


def _open_proc_fd(pid, fd, flags):
    try:
        return os.open('/proc/{}/fd/{}'.format(pid, fd), flags | os.O_CLOEXEC)
    except OSError as error:
        raise RuntimeError('The shared objects cannot be opened: process {} holds them no more '
                           '({})'.format(pid, error)) from None


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


def _map(source):
    """The caller's memfd @source, mapped read-only and shared: the
    caller's descriptor opened again from /proc, checked to be that memfd,
    sealed."""
    pid, fd, name = source
    own = _open_proc_fd(pid, fd, os.O_RDONLY)
    try:
        # The caller may have closed it and opened something else there.
        if os.readlink('/proc/self/fd/{}'.format(own)) != '/memfd:{} (deleted)'.format(name) or \
                fcntl.fcntl(own, fcntl.F_GET_SEALS) & _SEALS != _SEALS:
            raise RuntimeError('The shared objects\' buffers are gone from process {}: its descriptor {} is '
                               'another file now'.format(pid, fd))
        return mmap.mmap(own, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(own)


def _rebuild(pid, mappings):
    """The read-only view a persistent id stands for."""
    tag, source, kind, offset, size, details = pid
    if tag != 'wpool-buffer':
        raise ValueError('Unknown persistent id in the shared objects: {!r}'.format(tag))
    mapping = mappings.get(source)
    if mapping is None:
        mapping = mappings[source] = _map(source)
    if offset + size > len(mapping):
        raise ValueError('The shared objects\' buffers are shorter than they say')
    data = memoryview(mapping)[offset:offset + size]
    if kind == 'bytes':
        return data
    if kind == 'memoryview':
        fmt, shape = details
        return data.cast(fmt, shape)
    if kind == 'array':
        return data.cast(details)
    import numpy

    dtype, shape, order = details
    return numpy.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def loads(codec, data):
    """The shared objects unpickled with @codec (pickle or dill), their big
    buffers views of the caller's memfd, mapped once per loads()."""
    mappings = {}
    # An object met twice in the caller's is one object here too.
    views = {}

    class Unpickler(codec.Unpickler):
        def persistent_load(self, pid):
            key = pid[1:5]
            if key not in views:
                views[key] = _rebuild(pid, mappings)
            return views[key]

    return Unpickler(io.BytesIO(data)).load()
