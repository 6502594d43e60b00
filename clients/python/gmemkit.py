"""gmemkit.py - a Python client of `gmemkit serve` (the guest_memfd model as a fake kernel),
for VMM test harnesses. Standard library only.

Its methods mirror the calls a VMM makes (KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD,
KVM_SET_MEMORY_ATTRIBUTES2, pin/unpin, io_uring registration, KVM_RUN ...). As os.* calls do,
a failing kernel call raises KernelError, an OSError whose errno is the kernel's; on EAGAIN from
set_memory_attributes2 its error_offset is the first page that blocked the conversion. A host
access the kernel answers with a signal raises Signal. Handles are names ("h1", "h2", ...),
exactly as a scenario names them; the protocol is docs/server.md.

    k = Gmemkit.connect("/tmp/gmemkit.sock")       # or Gmemkit.spawn(["gmemkit", "serve"])
    vm = k.create_vm("sw_protected")
    gmem = k.create_guest_memfd(vm, 16384, ["MMAP", "INIT_SHARED"])
"""

import errno as _errno
import json
import socket
import subprocess

__all__ = ["Gmemkit", "KernelError", "Signal", "RpcError", "Exit"]


class KernelError(OSError):
    """A kernel call failed: .errno (a number), .name ("EAGAIN"), .error_offset (or None), .why."""

    def __init__(self, name, why, error_offset=None):
        super().__init__(getattr(_errno, name, _errno.EIO), f"{name}: {why}")
        self.name = name
        self.why = why
        self.error_offset = error_offset


class Signal(Exception):
    """A host access the kernel answered with a signal (SIGBUS on a private page)."""

    def __init__(self, signal, why):
        super().__init__(f"{signal}: {why}")
        self.signal = signal
        self.why = why


class Exit(Exception):
    """A guest access (guest_read/guest_write without on_fault) ended in a KVM exit."""

    def __init__(self, outcome):
        super().__init__(f"KVM_EXIT_{outcome['exit']} at gpa {outcome['gpa']}")
        self.outcome = outcome


class RpcError(Exception):
    """A JSON-RPC error: .code (-32700, -32600, -32601, -32602, -32000, -32603), .message, .data."""

    def __init__(self, error):
        super().__init__(f"{error['code']}: {error['message']}")
        self.code = error["code"]
        self.message = error["message"]
        self.data = error.get("data")


class Gmemkit:
    """One connection: one world (a VM host) in the server."""

    def __init__(self, reader, writer, closer=None):
        self._r = reader
        self._w = writer
        self._closer = closer
        self._id = 0
        self._handles = 0
        self.events = []
        """Notifications received (method, params), oldest first; see subscribe()."""
        self.on_event = None
        """Called as on_event(method, params) for each notification, if set."""

    @classmethod
    def connect(cls, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        f = s.makefile("rwb")
        return cls(f, f, lambda: (f.close(), s.close()))

    @classmethod
    def spawn(cls, argv):
        """Start `gmemkit serve` (argv, e.g. ["gmemkit", "serve"]) and talk over its stdin/stdout."""
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return cls(p.stdout, p.stdin, lambda: (p.stdin.close(), p.wait(), p.stdout.close()))

    def close(self):
        if self._closer:
            self._closer()
            self._closer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ the wire

    def call(self, method, **params):
        """Any method; returns its result, raises RpcError on a JSON-RPC error."""
        self._id += 1
        msg = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        self._w.write((json.dumps(msg) + "\n").encode())
        self._w.flush()
        while True:
            line = self._r.readline()
            if not line:
                raise ConnectionError("gmemkit serve closed the connection")
            m = json.loads(line)
            if "id" not in m:
                self.events.append((m["method"], m.get("params")))
                if self.on_event:
                    self.on_event(m["method"], m.get("params"))
                continue
            if m["id"] not in (self._id, None):
                continue
            if "error" in m:
                raise RpcError(m["error"])
            return m["result"]

    def _new(self):
        self._handles += 1
        return f"h{self._handles}"

    def _op(self, method, as_=False, **params):
        """An op: its outcome mapped as the kernel's return (handle, value, bytes or None)."""
        name = self._new() if as_ else None
        if name:
            params["as"] = name
        o = self.call(method, **{k: v for k, v in params.items() if v is not None})
        kind = o["kind"]
        if kind == "ok":
            if name:
                return name
            if "data" in o:
                return bytes.fromhex(o["data"])
            if "value" in o:
                return int(o["value"])
            return o.get("conversion")
        if kind == "errno":
            eo = o.get("out", {}).get("error_offset")
            raise KernelError(o["errno"], o["why"], int(eo) if eo is not None else None)
        if kind == "signal":
            raise Signal(o["signal"], o["why"])
        if kind == "exit":
            raise Exit(o)
        raise RpcError({"code": -32000, "message": f"{kind}: {o.get('why')}"})

    # ------------------------------------------------------------ server methods

    def session(self, profile=None, machine=None):
        return self.call("session", **{k: v for k, v in (("profile", profile), ("machine", machine)) if v})

    def subscribe(self, events="all"):
        return self.call("subscribe", events=events)

    def guest_boot(self, vm, **shape):
        """shape: ram, boot_private, boot_chunk, bounce_conversions, bounce_size, seed."""
        return self.call("guest_boot", vm=vm, **shape)

    def vcpu_run(self, vm, ret=None):
        """KVM_RUN: the next exit as a dict (exit: HYPERCALL, MEMORY_FAULT or SHUTDOWN)."""
        return self.call("vcpu_run", vm=vm, **({} if ret is None else {"ret": ret}))

    # ------------------------------------------------------------ the kernel interface

    def create_vm(self, type="default"):
        return self._op("create_vm", True, type=type)

    def check_extension(self, cap, vm=None):
        return self._op("check_extension", cap=cap, vm=vm)

    def create_guest_memfd(self, vm, size, flags=()):
        return self._op("create_guest_memfd", True, vm=vm, size=size, flags=list(flags))

    def close_fd(self, fd):
        return self._op("close", fd=fd)

    def mmap(self, fd, length, offset=0):
        return self._op("mmap", True, fd=fd, length=length, offset=offset)

    def munmap(self, map):
        return self._op("munmap", map=map)

    def read(self, map, offset, length):
        return self._op("read", map=map, offset=offset, length=length)

    def write(self, map, offset, data):
        return self._op("write", map=map, offset=offset, bytes=list(data))

    def set_user_memory_region2(self, vm, slot, guest_phys_addr, memory_size, userspace_addr=None, guest_memfd=None, guest_memfd_offset=0):
        return self._op("set_user_memory_region2", vm=vm, slot=slot, guest_phys_addr=guest_phys_addr, memory_size=memory_size,
                        userspace_addr=userspace_addr, guest_memfd=guest_memfd, guest_memfd_offset=guest_memfd_offset)

    def set_memory_attributes2(self, gmem, offset, size, attributes=(), flags=0):
        """KVM_SET_MEMORY_ATTRIBUTES2; raises KernelError (with .error_offset on EAGAIN)."""
        return self._op("set_memory_attributes2", fd=gmem, offset=offset, size=size, attributes=list(attributes), flags=flags)

    def pin_user_pages(self, map, offset, length, longterm=False):
        return self._op("pin_user_pages", True, map=map, offset=offset, length=length, longterm=longterm)

    def unpin_user_pages(self, pin):
        return self._op("unpin_user_pages", pin=pin)

    def io_uring_register_buffers(self, map, offset, length):
        return self._op("io_uring_register_buffers", True, map=map, offset=offset, length=length)

    def io_uring_unregister_buffers(self, ring):
        return self._op("io_uring_unregister_buffers", ring=ring)

    def vfio_dma_map(self, map, offset, length, iova):
        return self._op("vfio_dma_map", True, map=map, offset=offset, length=length, iova=iova)

    def vfio_dma_unmap(self, dma):
        return self._op("vfio_dma_unmap", dma=dma)

    def convert(self, gmem, offset, size, to, policy="retry"):
        """The server's own conversion manager (the userspace half); returns its summary."""
        return self._op("convert", fd=gmem, offset=offset, size=size, to=to, policy=policy)
