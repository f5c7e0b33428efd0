/**
 * The leak-test's reading of memcheck logs: what counts against us and what is node's. Fixtures are trimmed from real
 * runs of this suite.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { scriptArgs } from './support/runtime.js';
import { isOurs, parseMemcheck } from '../src/leak-test/valgrind.js';

const header = `==100== Memcheck, a memory error detector
==100== Command: node --expose-gc scenario-main.js strings-freed cpp
==100== `;
const summary = (allocs: number, frees: number) => `==100== HEAP SUMMARY:
==100==     in use at exit: 1,000 bytes in 10 blocks
==100==   total heap usage: ${allocs.toLocaleString('en-US')} allocs, ${frees.toLocaleString('en-US')} frees, 51,002,493 bytes allocated
==100== `;

const ourLeak = `==100== 438 bytes in 19 blocks are definitely lost in loss record 80 of 181
==100==    at 0x4845013: operator new[](unsigned long, std::nothrow_t const&) (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x6A2B1C3: cpp_print_and_return_len (/work/main/native-cpp/core/src/cpp_core.cpp:38)
==100==    by 0x6A2A0F1: napi_ownership::(anonymous namespace)::print_and_return(Napi::CallbackInfo const&) (/work/main/native-cpp/addon/src/addon.cpp:170)
==100==    by 0xB3D0F4: ??? (in /usr/bin/node)
==100== `;
const nodeLeak = `==100== 64 (24 direct, 40 indirect) bytes in 1 blocks are definitely lost in loss record 12 of 181
==100==    at 0x4840F2F: operator new(unsigned long) (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0xC1A2B3: node::Environment::Environment(...) (in /usr/bin/node)
==100== `;
const indirectOurs = `==100== 120 bytes in 5 blocks are indirectly lost in loss record 70 of 181
==100==    at 0x48407B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x7B11D2: napi_ownership_dispatch::handler_ (/work/main/native-rust/dispatch/src/lib.rs:359)
==100== `;
const useAfterFree = `==100== Invalid read of size 1
==100==    at 0x1C3D2E1: Builtins_KeyedLoadIC_Megamorphic (in /usr/bin/node)
==100==  Address 0x9a1b2c3 is 0 bytes inside a block of size 27 free'd
==100==    at 0x4843B2F: operator delete[](void*) (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x6A2B2D0: cpp_free_string (/work/main/native-cpp/core/src/cpp_core.cpp:70)
==100==  Block was alloc'd at
==100==    at 0x4845013: operator new[](unsigned long, std::nothrow_t const&) (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100== `;
const v8Noise = `==100== Conditional jump or move depends on uninitialised value(s)
==100==    at 0x1843966: heap::base::(anonymous namespace)::IteratePointersInStack(...) (in /usr/bin/node)
==100==    by 0x18439C5: heap::base::Stack::IteratePointersImpl(...) (in /usr/bin/node)
==100== `;
const valgrindWarning = `==100== Warning: set address range perms: large range [0xbc75000, 0x2bcb4000) (noaccess)
==100==    at 0x1C00000: Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit (in /usr/bin/node)
==100==    by 0x6A2A0F1: napi_ownership::(anonymous namespace)::string_view(Napi::CallbackInfo const&) (/work/main/native-cpp/addon/src/addon.cpp:240)
==100== `;

// What a node run prints before its first error on another thread: a note and a thread label, no blank line between.
const warningThenSyscallError = `==100== Warning: set address range perms: large range [0xbc75000, 0x2bcb4000) (noaccess)
==100== Thread 11:
==100== Syscall param pwrite64(buf) points to unaddressable byte(s)
==100==    at 0x63004C7: __libc_pwrite64 (pwrite64.c:25)
==100==    by 0x18B05EF: uv__fs_write (fs.c:1197)
==100==    by 0x18A7B3F: worker (threadpool.c:122)
==100==  Address 0x6e55580 is 0 bytes inside a block of size 32,769 free'd
==100==    at 0x5ECE75B: operator delete[](void*) (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x2E08FC74: napi_ownership::(anonymous namespace)::release_string(Napi::CallbackInfo const&, bool) (in /work/main/build/Release/napi_ownership_cpp.node)
==100== `;

describe('memcheck log reading', () => {
  test('a loss record with a frame of ours counts; node’s does not', () => {
    const r = parseMemcheck([[header, ourLeak, nodeLeak, summary(476_591, 463_226)].join('\n')]);
    expect(r.allocs).toBe(476_591);
    expect(r.frees).toBe(463_226);
    expect(r.ours).toEqual({ definitely: 438, indirectly: 0, possibly: 0 });
    expect(r.all.definitely).toBe(438 + 24); // direct bytes only: the 40 indirect ones have records of their own
    expect(r.records.filter((x) => x.ours)).toHaveLength(1);
  });

  test('indirectly lost boxes of ours count as indirect', () => {
    const r = parseMemcheck([[header, indirectOurs, summary(10, 5)].join('\n')]);
    expect(r.ours).toEqual({ definitely: 0, indirectly: 120, possibly: 0 });
  });

  test('a use after free is ours when the free was ours, though the read was V8’s', () => {
    const r = parseMemcheck([[header, useAfterFree, v8Noise, summary(10, 10)].join('\n')]);
    expect(r.errors).toHaveLength(2);
    expect(r.ourErrors).toBe(1);
    expect(r.errors.find((e) => e.ours)!.what).toBe('Invalid read of size 1');
  });

  test('valgrind’s own warnings are not errors; several processes add up', () => {
    const one = [header, valgrindWarning, summary(100, 100), '==100== All heap blocks were freed -- no leaks are possible'].join('\n');
    const r = parseMemcheck([one, one]);
    expect(r.errors).toHaveLength(0);
    expect(r.pids).toBe(2);
    expect(r.allocs).toBe(200);
    expect(r.allFreed).toBe(true);
  });

  test('an error printed right under a valgrind note and a thread label still counts', () => {
    const r = parseMemcheck([[header, warningThenSyscallError, summary(10, 10)].join('\n')]);
    expect(r.errors.map((e) => e.what)).toEqual(['Syscall param pwrite64(buf) points to unaddressable byte(s)']);
    expect(r.ourErrors).toBe(1);
  });

  test('attribution by object, source path and symbol', () => {
    expect(isOurs('??? (in /work/main/build/Release/napi_ownership_cpp.node)')).toBe(true);
    expect(isOurs('??? (in /x/build/rust/napi-ownership-rust.linux-x64-gnu.node)')).toBe(true);
    expect(isOurs('free_string (/work/main/native-rust/core/src/lib.rs:80)')).toBe(true);
    expect(isOurs('dispatcher_send (dispatcher.cpp:120)')).toBe(true);
    expect(isOurs('napi_create_reference (in /usr/bin/node)')).toBe(false);
    expect(isOurs('node::Environment::RunCleanup() (in /usr/bin/node)')).toBe(false);
    expect(isOurs('malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)')).toBe(false);
  });
});

describe('napi-ownership leak-test command', () => {
  const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
  const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
    spawnSync(process.execPath, [...scriptArgs(cli), ...args], { encoding: 'utf8', env });

  test('without valgrind: a clear message saying how to install it, and a non-zero exit', () => {
    const r = run(['leak-test'], { ...process.env, PATH: '/nonexistent' });
    expect(r.status).toBe(69);
    expect(r.stderr).toContain('apt-get install valgrind');
  });

  test('bad arguments are refused with a usage line', () => {
    expect(run(['leak-test', '--backend', 'go']).status).toBe(64);
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stderr + help.stdout).toContain('usage: napi-ownership leak-test');
  });
});
