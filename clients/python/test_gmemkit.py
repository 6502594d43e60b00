"""test_gmemkit.py - the Python client against `gmemkit serve --socket PATH` (standard library
unittest): the blocked conversion of examples/01 (kernel-semantics.md §4: a long-term pin makes
KVM_SET_MEMORY_ATTRIBUTES2 fail with EAGAIN and error_offset naming the page), bad requests that
leave the connection usable, events, and the CoCo guest served by a small Python handler.
Usage: python3 test_gmemkit.py SOCKET
"""

import errno
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gmemkit import Gmemkit, KernelError, RpcError, Signal  # noqa: E402

SOCKET = None
K = 1024


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.k = Gmemkit.connect(SOCKET)
        self.k.session(profile="ipc-v8")

    def tearDown(self):
        self.k.close()

    def world(self):
        k = self.k
        vm = k.create_vm("sw_protected")
        gmem = k.create_guest_memfd(vm, 16 * K, ["MMAP", "INIT_SHARED"])
        return vm, gmem, k.mmap(gmem, 16 * K)

    def test_blocked_conversion_to_completion(self):
        k = self.k
        _, gmem, m = self.world()
        k.write(m, 0, b"A")
        pin = k.pin_user_pages(m, 4 * K, 4 * K, longterm=True)
        with self.assertRaises(KernelError) as cm:
            k.set_memory_attributes2(gmem, 0, 16 * K, ["PRIVATE"])
        self.assertEqual(cm.exception.errno, errno.EAGAIN)
        self.assertEqual(cm.exception.error_offset, 4096)
        k.unpin_user_pages(pin)
        k.set_memory_attributes2(gmem, 0, 16 * K, ["PRIVATE"])
        with self.assertRaises(Signal) as sig:
            k.read(m, 0, 1)
        self.assertEqual(sig.exception.signal, "SIGBUS")
        k.set_memory_attributes2(gmem, 0, 16 * K, [])
        self.assertEqual(k.read(m, 0, 1), b"A")  # examples/02: content survives a round trip on sw_protected

    def test_bad_requests_leave_the_connection_usable(self):
        k = self.k
        with self.assertRaises(RpcError) as cm:
            k.call("create_vm", type="bogus")
        self.assertEqual(cm.exception.code, -32602)
        self.assertIn("unknown VM type \"bogus\"", cm.exception.message)
        with self.assertRaises(RpcError) as cm:
            k.call("no_such_op")
        self.assertEqual(cm.exception.code, -32601)
        k._w.write(b"{not json\n")
        with self.assertRaises(RpcError) as cm:
            k.call("create_vm")  # the parse error (id null) is the reply read first
        self.assertEqual(cm.exception.code, -32700)
        self.assertTrue(k.create_vm().startswith("h"))

    def test_events(self):
        k = self.k
        _, gmem, m = self.world()
        ring = k.io_uring_register_buffers(m, 8 * K, 4 * K)
        k.subscribe(["blocked", "released", "retried", "completed"])
        summary = k.convert(gmem, 0, 16 * K, "private")
        self.assertEqual(summary["retries"], 1)
        self.assertEqual([e for e, _ in k.events], ["blocked", "released", "retried", "completed"])
        self.assertEqual(k.events[0][1]["holders"], [ring])
        self.assertEqual(k.events[0][1]["offset"], 8192)

    def test_guest_served_by_a_python_handler(self):
        k = self.k
        vm = k.create_vm("tdx")
        ram = 256 * K
        gmem = k.create_guest_memfd(vm, ram, ["MMAP", "INIT_SHARED"])
        m = k.mmap(gmem, ram)
        k.set_user_memory_region2(vm, 0, 0, ram, userspace_addr=m, guest_memfd=gmem)
        holders = {k.io_uring_register_buffers(m, 32 * K, 8 * K): (32 * K, 40 * K)}
        k.guest_boot(vm, ram=ram, boot_private=128 * K, boot_chunk=64 * K, bounce_conversions=4, bounce_size=16 * K)
        ret, eagains = None, 0
        while True:
            x = k.vcpu_run(vm, ret)
            ret = None
            if x["exit"] == "SHUTDOWN":
                break
            to_private = x["to"] == "private" if x["exit"] == "HYPERCALL" else x["private"]
            for _ in range(8):
                try:
                    k.set_memory_attributes2(gmem, x["gpa"], x["size"], ["PRIVATE"] if to_private else [])
                    ret = 0
                    break
                except KernelError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                    eagains += 1
                    ret = -errno.EAGAIN
                    for h, (lo, hi) in list(holders.items()):
                        if lo <= e.error_offset < hi:
                            k.io_uring_unregister_buffers(h)
                            del holders[h]
        self.assertGreater(eagains, 0)
        self.assertEqual((x["completed"], x["failed"], x["faults"]), (x["requests"], 0, 0))


if __name__ == "__main__":
    SOCKET = sys.argv.pop(1)
    unittest.main(verbosity=2)
