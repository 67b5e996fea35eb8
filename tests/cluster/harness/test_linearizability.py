"""The linearizability checker must accept good histories and catch bad ones."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.linearizability import ABSENT, FAIL, OK, UNKNOWN, Op, check_history, check_key  # noqa: E402


def w(v, t0, t1, outcome=OK, key=1, client=0):
    return Op(key, "write", v, t0, t1, outcome, client=client)


def r(v, t0, t1, outcome=OK, key=1, client=0):
    return Op(key, "read", v, t0, t1, outcome, client=client)


def a(v, t0, t1, outcome=OK, key=1):
    return Op(key, "append", v, t0, t1, outcome)


def d(t0, t1, existed=None, outcome=OK, key=1):
    return Op(key, "delete", None, t0, t1, outcome, existed=existed)


class Accepts(unittest.TestCase):
    def test_sequential(self):
        self.assertTrue(check_key([w("a", 0, 1), r("a", 2, 3), w("b", 4, 5), r("b", 6, 7)]).ok)

    def test_concurrent_read_may_see_either(self):
        h = [w("a", 0, 1), w("b", 2, 6), r("a", 3, 4), r("b", 5, 7)]
        self.assertTrue(check_key(h).ok)

    def test_unknown_write_may_have_happened(self):
        h = [w("a", 0, 1), w("b", 2, 3, outcome=UNKNOWN), r("b", 10, 11)]
        self.assertTrue(check_key(h).ok)

    def test_unknown_write_may_not_have_happened(self):
        h = [w("a", 0, 1), w("b", 2, 3, outcome=UNKNOWN), r("a", 10, 11)]
        self.assertTrue(check_key(h).ok)

    def test_failed_write_is_ignored(self):
        h = [w("a", 0, 1), w("b", 2, 3, outcome=FAIL), r("a", 4, 5)]
        self.assertTrue(check_key(h).ok)

    def test_delete_then_absent(self):
        h = [w("a", 0, 1), d(2, 3, existed=True), r(ABSENT, 4, 5), d(6, 7, existed=False)]
        self.assertTrue(check_key(h).ok)

    def test_appends_in_order(self):
        h = [a("x", 0, 1), a("y", 2, 3), r("xy", 4, 5), w("z", 6, 7), a("w", 8, 9), r("zw", 10, 11)]
        self.assertTrue(check_key(h).ok)

    def test_concurrent_appends_in_either_order(self):
        h = [a("x", 0, 5), a("y", 1, 6), r("yx", 7, 8)]
        self.assertTrue(check_key(h).ok)

    def test_unknown_append_may_show_up_later(self):
        h = [a("x", 0, 1), a("y", 2, 3, outcome=UNKNOWN), r("x", 4, 5), r("xy", 6, 7)]
        self.assertTrue(check_key(h).ok)

    def test_partitioned_keys(self):
        h = [w("a", 0, 1, key=1), w("x", 0, 1, key=2), r("a", 2, 3, key=1), r("x", 2, 3, key=2)]
        self.assertTrue(check_history(h).ok)


class Catches(unittest.TestCase):
    def test_stale_read(self):
        # b was acknowledged before the read started, yet the read saw a.
        h = [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)]
        self.assertFalse(check_key(h).ok)

    def test_lost_write(self):
        # An acknowledged write that no later read can see.
        h = [w("a", 0, 1), r(ABSENT, 2, 3)]
        self.assertFalse(check_key(h).ok)

    def test_read_of_never_written_value(self):
        self.assertFalse(check_key([w("a", 0, 1), r("zzz", 2, 3)]).ok)

    def test_failed_write_must_not_be_seen(self):
        h = [w("a", 0, 1), w("b", 2, 3, outcome=FAIL), r("b", 4, 5)]
        self.assertFalse(check_key(h).ok)

    def test_reads_going_back_in_time(self):
        # Two sequential reads during a long write: new then old is impossible.
        h = [w("a", 0, 1), w("b", 2, 20), r("b", 3, 4), r("a", 5, 6)]
        self.assertFalse(check_key(h).ok)

    def test_append_applied_twice(self):
        # A retried append that took effect twice: exactly-once broken.
        h = [a("x", 0, 1), a("y", 2, 3), r("xyy", 4, 5)]
        self.assertFalse(check_key(h).ok)

    def test_appends_out_of_order(self):
        h = [a("x", 0, 1), a("y", 2, 3), r("yx", 4, 5)]
        self.assertFalse(check_key(h).ok)

    def test_delete_answer_contradicts_state(self):
        h = [w("a", 0, 1), d(2, 3, existed=False)]
        self.assertFalse(check_key(h).ok)

    def test_failure_named_by_key(self):
        h = [w("x", 0, 1, key=2), r("x", 2, 3, key=2), w("a", 0, 1, key=7), r(ABSENT, 2, 3, key=7)]
        v = check_history(h)
        self.assertFalse(v.ok)
        self.assertEqual(v.key, 7)
        self.assertIn("no linearization", v.reason)


if __name__ == "__main__":
    unittest.main()
