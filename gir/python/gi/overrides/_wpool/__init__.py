# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The parts of the Wpool override (gi/overrides/Wpool.py), one concern
# per module; private, as their underscored names say: only the override's
# Wpool.Task, Wpool.Pool, Wpool.AsyncResult and errors are API.

from gi.module import get_introspection_module

Wpool = get_introspection_module('Wpool')
