"""The agents' seccomp filter, run by a small interpreter of the four instructions it uses, for the
architectures this machine cannot run (tests/e2e/test_sandbox.py has the real kernel run it here)."""

from __future__ import annotations

import struct

import pytest

from orchestrator.runtimes import seccomp

ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026
X86_64, I386, AARCH64, ARM = 0xC000003E, 0x40000003, 0xC00000B7, 0x40000028


def run(program: bytes, arch: int, nr: int, *args: int) -> int:
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, pc * 8)
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:  # ret k
            return k
        elif code in (0x15, 0x35):  # jeq / jge k
            taken = acc == k if code == 0x15 else acc >= k
            pc += jt if taken else jf
        else:
            raise AssertionError(f"instruction {code:#x}")
        pc += 1


@pytest.mark.parametrize(
    ("machine", "native", "compat", "ptrace", "compat_ptrace", "vm_writev", "by_handle", "compat_by_handle"),
    [("x86_64", X86_64, I386, 101, 26, 311, 304, 342), ("aarch64", AARCH64, ARM, 117, 26, 271, 265, 371)],
)
def test_the_init_is_out_of_reach_in_both_tables(
    machine: str,
    native: int,
    compat: int,
    ptrace: int,
    compat_ptrace: int,
    vm_writev: int,
    by_handle: int,
    compat_by_handle: int,
) -> None:
    program = seccomp.build(machine)
    for arch, nr in ((native, by_handle), (compat, compat_by_handle), (native, 438), (compat, 438)):
        assert run(program, arch, nr, 3, 0, 0) == EPERM  # open_by_handle_at, pidfd_getfd: never
    assert run(program, native, ptrace, 16, 1) == EPERM
    assert run(program, native, ptrace, 16, 1 + 2**32) == EPERM  # the kernel reads the pid as an int
    assert run(program, native, ptrace, 16, 7) == ALLOW  # a debugger on the agent's own process
    assert run(program, native, vm_writev, 1) == EPERM
    assert run(program, native, vm_writev, 7) == ALLOW
    assert run(program, native, 434, 1) == EPERM  # pidfd_open
    assert run(program, native, 434, 7) == ALLOW
    assert run(program, native, 435) == ENOSYS  # clone3
    assert run(program, native, 0) == ALLOW
    assert run(program, compat, compat_ptrace, 16, 1) == EPERM
    assert run(program, compat, compat_ptrace, 16, 7) == ALLOW
    assert run(program, compat, 435) == ENOSYS
    assert run(program, 0x1234, 0) == ENOSYS  # an architecture without a table


def test_x32_calls_are_refused() -> None:
    program = seccomp.build("x86_64")
    assert run(program, X86_64, 0x40000000 | 101, 16, 1) == ENOSYS
    assert run(program, X86_64, 0x40000000 | 1) == ENOSYS


def test_elsewhere_clone3_alone_is_refused() -> None:
    program = seccomp.build("riscv64")
    assert run(program, 0xC00000F3, 435) == ENOSYS
    assert run(program, 0xC00000F3, 117, 16, 1) == ALLOW
