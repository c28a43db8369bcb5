"""The seccomp filter the sandbox loads for agents (classic BPF, handed to bwrap on a descriptor).

- `clone3` answers ENOSYS, so the C library falls back to `clone` (as under Docker's default profile):
  `clone3` can start a child in another cgroup (CLONE_INTO_CGROUP) through a descriptor opened on the
  read-only /sys, and on cgroup v2 an agent would leave its group, and its limits, that way.
- No way into the sandbox's init (pid 1, bwrap's own process, under this filter too). The namespace dies
  with the CLI only by the init's parent-death signal, and the init tells bwrap of the CLI's end on an
  eventfd: traced, written to or robbed of that descriptor, it would keep the sandbox and a daemon alive
  past the end (or report an exit code of the agent's choosing). `ptrace`, `process_vm_readv`,
  `process_vm_writev` and `pidfd_open` on pid 1 answer EPERM; `pidfd_getfd` (another process's
  descriptors) and `open_by_handle_at` (a pidfs handle is a pidfd without `pidfd_open`) answer EPERM
  always. Its `mem` files are masked by the sandbox. Debuggers still attach to the agent's own processes.
- x32 calls answer ENOSYS (nothing an agent runs uses them; their numbers would need a table of their own).

The numbers differ by architecture, so the filter reads `seccomp_data.arch` first and knows the machine's
native and compat tables (a 64-bit process may call the 32-bit table); any other architecture is refused."""

from __future__ import annotations

import dataclasses
import os
import platform
import struct

_CLONE3 = 435  # these three have the same number in every table
_PIDFD_OPEN = 434
_PIDFD_GETFD = 438
_X32 = 0x40000000  # the x32 ABI's numbers carry this bit
_ENOSYS, _EPERM = 38, 1
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_NR, _ARCH = 0, 4


def _arg_low(index: int) -> int:
    """The offset of the low 32 bits of a call's argument (little-endian: the kernel reads a pid as int)."""
    return 16 + 8 * index


@dataclasses.dataclass(frozen=True)
class _Table:
    audit_arch: int
    ptrace: int
    process_vm_readv: int
    process_vm_writev: int
    open_by_handle_at: int
    x32: bool = False


_X86_64 = _Table(0xC000003E, 101, 310, 311, open_by_handle_at=304, x32=True)
_I386 = _Table(0x40000003, 26, 347, 348, open_by_handle_at=342)
_AARCH64 = _Table(0xC00000B7, 117, 270, 271, open_by_handle_at=265)
_ARM = _Table(0x40000028, 26, 376, 377, open_by_handle_at=371)
TABLES = {"x86_64": (_X86_64, _I386), "aarch64": (_AARCH64, _ARM)}


@dataclasses.dataclass
class _Jump:
    code: int
    k: int
    true: str | None  # a label, or None for the next instruction
    false: str | None = None


class _Program:
    """Instructions with forward jumps to labels, resolved when assembled."""

    def __init__(self) -> None:
        self.items: list[_Jump | tuple[int, int] | str] = []

    def load(self, offset: int) -> None:
        self.items.append((_LD_W_ABS, offset))

    def ret(self, value: int) -> None:
        self.items.append((_RET_K, value))

    def jump(self, code: int, k: int, true: str | None, false: str | None = None) -> None:
        self.items.append(_Jump(code, k, true, false))

    def label(self, name: str) -> None:
        self.items.append(name)

    def assemble(self) -> bytes:
        at: dict[str, int] = {}
        count = 0
        for item in self.items:
            if isinstance(item, str):
                at[item] = count
            else:
                count += 1
        out, pc = [], 0
        for item in self.items:
            if isinstance(item, str):
                continue
            if isinstance(item, _Jump):
                jt, jf = (0 if t is None else at[t] - pc - 1 for t in (item.true, item.false))
                assert 0 <= jt < 256 and 0 <= jf < 256, "a jump out of reach"
                out.append(struct.pack("=HBBI", item.code, jt, jf, item.k))
            else:
                out.append(struct.pack("=HBBI", item[0], 0, 0, item[1]))
            pc += 1
        return b"".join(out)


def _table_block(p: _Program, table: _Table, name: str) -> None:
    p.label(name)
    p.load(_NR)
    if table.x32:
        p.jump(_JGE_K, _X32, "enosys")
    p.jump(_JEQ_K, _CLONE3, "enosys")
    p.jump(_JEQ_K, _PIDFD_GETFD, "eperm")
    p.jump(_JEQ_K, table.open_by_handle_at, "eperm")
    p.jump(_JEQ_K, table.ptrace, "pid_in_arg1")
    for nr in (table.process_vm_readv, table.process_vm_writev, _PIDFD_OPEN):
        p.jump(_JEQ_K, nr, "pid_in_arg0")
    p.ret(_RET_ALLOW)


def build(machine: str | None = None) -> bytes:
    """The filter for `machine` (this one's by default); without tables for it, clone3's rule alone,
    which holds on every architecture (its number is the same in every table)."""
    tables = TABLES.get(machine or platform.machine())
    p = _Program()
    if tables is None:
        p.load(_NR)
        p.jump(_JEQ_K, _CLONE3, "enosys")
        p.ret(_RET_ALLOW)
        p.label("enosys")
        p.ret(_RET_ERRNO | _ENOSYS)
        return p.assemble()
    native, compat = tables
    p.load(_ARCH)
    p.jump(_JEQ_K, native.audit_arch, "native")
    p.jump(_JEQ_K, compat.audit_arch, "compat")
    p.ret(_RET_ERRNO | _ENOSYS)  # an architecture this filter has no table for
    _table_block(p, native, "native")
    _table_block(p, compat, "compat")
    for label, arg in (("pid_in_arg1", 1), ("pid_in_arg0", 0)):
        p.label(label)
        p.load(_arg_low(arg))
        p.jump(_JEQ_K, 1, "eperm")
        p.ret(_RET_ALLOW)
    p.label("eperm")
    p.ret(_RET_ERRNO | _EPERM)
    p.label("enosys")
    p.ret(_RET_ERRNO | _ENOSYS)
    return p.assemble()


PROGRAM = build()


def program_fd() -> int:
    """A descriptor, at its start, on a fresh copy of the filter (bwrap reads it to its end)."""
    fd = os.memfd_create("agent-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, PROGRAM)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd
