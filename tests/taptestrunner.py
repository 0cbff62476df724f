# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a unittest module and reports in TAP, for meson's 'tap' protocol."""

import faulthandler
import sys
import traceback
import unittest


class TAPResult(unittest.TestResult):
    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.number = 0

    def _line(self, text):
        self.stream.write(text + '\n')
        self.stream.flush()

    def _diagnostic(self, err):
        for line in ''.join(traceback.format_exception(*err)).splitlines():
            self._line('# ' + line)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.number += 1
        self._line('ok {} - {}'.format(self.number, test.id()))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.number += 1
        self._line('not ok {} - {}'.format(self.number, test.id()))
        self._diagnostic(err)

    addError = addFailure

    def addSubTest(self, test, subtest, err):
        # A failed subtest fails its test, which reports nothing more:
        # say which, and why.
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.number += 1
            self._line('not ok {} - {}'.format(self.number, subtest.id()))
            self._diagnostic(err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.number += 1
        self._line('ok {} - {} # SKIP {}'.format(self.number, test.id(), reason))

    # A test of a known defect (unittest.expectedFailure) is TAP's TODO;
    # one that passes says the defect is fixed, for it to lose the marker.
    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.number += 1
        self._line('not ok {} - {} # TODO known defect'.format(self.number, test.id()))
        self._diagnostic(err)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.number += 1
        self._line('ok {} - {} # TODO the defect is fixed: remove expectedFailure'.format(self.number, test.id()))


# A test that hangs prints every thread's Python stack and fails here,
# before meson's timeout (240 s) kills it without a word.
DUMP_AFTER = 200


def main(module='__main__'):
    faulthandler.dump_traceback_later(DUMP_AFTER, exit=True)
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    result = TAPResult(sys.stdout)
    result._line('1..{}'.format(suite.countTestCases()))
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)
