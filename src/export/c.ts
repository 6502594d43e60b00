// `gmemkit export c`: a scenario as one standalone C program (libc and the kernel's uapi
// headers only) that performs its steps with real system calls, the way the linux backend does,
// checks every expectation and prints TAP; or, with `kselftest`, a test in the conventions of
// tools/testing/selftests (kselftest_harness.h). One function per scenario (per profile when
// the scenario names several), each step commented with its scenario text. Pure text
// generation: it never runs anything.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { VM_TYPES } from '../model/abi.js';
import { findProfile, type Profile } from '../model/profile.js';
import { VM_TYPE_FACTS, FULL_MACHINE, PROBED_MACHINE } from '../model/platform.js';
import { expectFor, type Expect } from '../scenario/expect.js';
import type { Scenario, Step } from '../scenario/load.js';
import type { HandleRef } from '../scenario/ops.js';
import { describeStep } from '../scenario/report.js';
import { CORE, INCLUDES, MAIN_SUPPORT, TAP, UAPI } from './c-runtime-core.js';
import { GUEST } from './c-runtime-guest.js';
import { FAULTS, HOST_ACCESS, USER_ADDR_CHECK } from './c-runtime-host.js';
import { ABI, KVM_HELPERS, READ_LIMIT } from './c-runtime-kvm.js';
import { HOLDERS, ODIRECT, PINS, PIPES, USER_RANGE } from './c-runtime-pins.js';
import { C_OPS, ON_FAULT_REASON, type EmitContext } from './c-ops.js';
import { cBytes, cComment, cIdent, cNum, cString, identifiersIn } from './c-values.js';
import { KSELFTEST } from './c-kselftest.js';

export interface ExportOptions {
  /** Write kselftest_harness.h conventions (TEST, ASSERT_*) instead of a standalone TAP program. */
  readonly kselftest?: boolean;
}

/** A scenario that cannot be exported (an op without a C translation); the message names file, step and op. */
export class ExportError extends Error {}

/** Support blocks in the order they must appear, with the blocks each one uses. */
const BLOCKS: readonly { name: string; text: string; uses?: readonly string[] }[] = [
  { name: 'readlimit', text: READ_LIMIT },
  { name: 'host', text: HOST_ACCESS },
  { name: 'useraddr', text: USER_ADDR_CHECK },
  { name: 'userrange', text: USER_RANGE },
  { name: 'pins', text: PINS, uses: ['userrange'] },
  { name: 'holders', text: HOLDERS, uses: ['pins'] },
  { name: 'odirect', text: ODIRECT, uses: ['pins'] },
  { name: 'pipes', text: PIPES, uses: ['userrange'] },
  { name: 'guest', text: GUEST },
  ...Object.entries(KVM_HELPERS).map(([op, text]) => ({ name: `op:${op}`, text })),
];
const RUNTIME_IDENTIFIERS = identifiersIn([INCLUDES, UAPI, CORE, TAP, MAIN_SUPPORT, ABI, FAULTS, KSELFTEST, ...BLOCKS.map((b) => b.text)].join('\n'));

/** The file name for a scenario's C program: its name in lower case, words joined by '-'. */
export function cFileName(s: Scenario): string {
  return `${s.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'scenario'}.c`;
}

function functionName(s: Scenario, profile: string | undefined, taken: Set<string>): string {
  const base = s.name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64).replace(/_+$/, '');
  const id = cIdent(`${base || 'scenario'}${profile ? `__${profile}` : ''}`, taken);
  taken.add(id);
  return id;
}

function cExpect(e: Expect): string {
  switch (e.kind) {
    case 'ok': return 'SUCCEEDS';
    case 'any': return 'ANYTHING';
    case 'errno': return e.out.error_offset !== undefined ? `FAILS_AT(${e.errno}, ${cNum(e.out.error_offset)})` : `FAILS(${e.errno})`;
    case 'signal': return `RAISES(${e.signal})`;
    case 'data': return `READS(${cBytes(e.bytes)}, ${e.bytes.length})`;
    case 'fill': return `READS_ALL(0x${e.fill.toString(16).padStart(2, '0')})`;
    case 'value': return `RETURNS(${cNum(e.value)})`;
    case 'fails': return 'FAILS_ANY';
    case 'bits': return `HAS_BITS(${cNum(e.bits)})`;
    case 'out': return `STATS(${Object.entries(e.out).map(([k, v]) => `.has_st_${k} = true, .st_${k} = ${cNum(v)}`).join(', ')})`;
    case 'exit': {
      const parts = [`KVM_EXIT_${e.exit}`];
      if (e.gpa !== undefined) parts.push(`.has_gpa = true, .gpa = ${cNum(e.gpa)}`);
      if (e.size !== undefined) parts.push(`.has_size = true, .size = ${cNum(e.size)}`);
      if (e.private !== undefined) parts.push(`.has_private = true, .private_ = ${e.private}`);
      return `EXITS(${parts.join(', ')})`;
    }
  }
}

/** The scenario text of each step (its lines in the file), for the comment above its C. */
function sourceLines(s: Scenario): Map<number, string[]> {
  const out = new Map<number, string[]>();
  let lines: string[];
  try {
    lines = readFileSync(s.file, 'utf8').split('\n');
  } catch {
    return out;
  }
  const starts = s.steps.map((st) => st.line);
  s.steps.forEach((st, i) => {
    if (st.line === undefined) return;
    const end = starts.slice(i + 1).find((l) => l !== undefined) ?? lines.length + 1;
    const text = lines.slice(st.line - 1, end - 1);
    while (text.length && (text[text.length - 1]!.trim() === '' || text[text.length - 1]!.trim().startsWith('#'))) text.pop();
    out.set(st.index, text);
  });
  return out;
}

/** A block-style step on one line: its mapping in flow style, then its YAML comments. */
function oneLine(lines: string[]): string {
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  const text = lines.map((l) => l.slice(indent)).join('\n');
  const notes = lines.map((l) => /^[^"']*?\s#\s?(.*)$/.exec(l)?.[1]?.trim()).filter((x): x is string => Boolean(x));
  let flow: string;
  try {
    const step = (parseDocument(text, { intAsBigInt: true }).toJS() as unknown[])[0];
    flow = stringify(step, { collectionStyle: 'flow', lineWidth: 0 }).trim();
  } catch {
    return lines.map((l) => l.trim()).join(' ');
  }
  return `- ${flow}${notes.length ? `  # ${notes.join('; ')}` : ''}`;
}

function stepComment(st: Step, src: string[] | undefined, file: string): string {
  const where = st.line ? `${file}:${st.line}` : `step ${st.index}`;
  if (!src || src.length === 0) return `\t/* ${where} */`;
  const text = src.length === 1 ? src[0]!.trim() : oneLine(src.map((l) => l.replace(/\t/g, '  ').trimEnd()));
  return `\t/* ${where}: ${cComment(text)} */`;
}

interface Emitted { readonly fn: string; readonly body: string; readonly steps: number }

function emitFunction(s: Scenario, profile: Profile, fname: string, first: number, needs: Set<string>, kselftest: boolean, src: Map<number, string[]>): Emitted {
  const taken = new Set([...RUNTIME_IDENTIFIERS, fname]);
  const idents = new Map<string, string>();
  for (const st of s.steps) if (st.as) idents.set(st.as, cIdent(st.as, taken)), taken.add(idents.get(st.as)!);
  const ctx: EmitContext = {
    profile,
    ref: (v) => {
      if (v === undefined) return 'NULL';
      const r = v as HandleRef;
      return 'raw' in r ? `RAW(${cNum(r.raw)})` : `&${idents.get(r.handle)!}`;
    },
  };
  const lines: string[] = [];
  const decl = [...idents].map(([name, id]) => `\tstruct handle ${id} = HANDLE(${cString(name)});`);
  const file = basename(s.file);
  for (const st of s.steps) {
    const em = C_OPS[st.op];
    if (!em) throw new ExportError(`${s.file}: step ${st.index}: op '${st.op}' has no C translation; exportable ops: ${Object.keys(C_OPS).join(', ')}`);
    const n = first + st.index - 1;
    const title = cString(describeStep({ step: st } as never).replace(/#/g, '\\#'));
    let call: string;
    if ((st.op === 'guest_read' || st.op === 'guest_write') && st.args.on_fault !== undefined) {
      call = `not_exported(${cString(ON_FAULT_REASON)}, ${ctx.ref(st.args.vm)}, NULL)`;
    } else if ('reason' in em) {
      const refs = em.uses.map((f) => ctx.ref(st.args[f])).concat(['NULL', 'NULL']).slice(0, 2);
      call = `not_exported(${cString(typeof em.reason === 'string' ? em.reason : em.reason(st.args))}, ${refs.join(', ')})`;
    } else {
      em.needs.forEach((b) => needs.add(b));
      call = em.call(st.args, ctx);
    }
    const expect = cExpect(expectFor(st.expect, profile.name));
    lines.push('', stepComment(st, src.get(st.index), file));
    if (st.expect.violations.length) lines.push(`\t/* the model sees invariant ${st.expect.violations.join(', ')} break here: a kernel-internal state C cannot observe */`);
    if (st.knownDifference) lines.push(`\t/* known difference between the model and the kernel: ${cComment(st.knownDifference)} */`);
    const macro = kselftest ? (st.as ? 'STEP_AS' : 'STEP') : (st.as ? 'produce' : 'check');
    const target = st.as ? `&${idents.get(st.as)!}, ` : '';
    lines.push(`\t${macro}(${target}${n}, ${title},\n\t${' '.repeat(macro.length + 1)}${call.replace(/\n/g, `\n${' '.repeat(macro.length + 1)}`)}, ${expect});`);
  }
  const head = kselftest ? `TEST(${fname})\n{` : `static void ${fname}(void)\n{`;
  const setup = kselftest ? ['\tstart_test(_metadata);', `\tabi = &${abiName(profile)};`] : [`\tabi = &${abiName(profile)};`, `\tprintf("# %s [%s]\\n", ${cString(s.name)}, abi->name);`];
  const tail = kselftest ? ['', '\tif (lacking[0])', '\t\tSKIP(return, "%s", lacking);'] : [];
  const body = [head, ...decl, ...(decl.length ? [''] : []), ...setup, ...lines, ...tail, '}'].join('\n');
  return { fn: fname, body, steps: s.steps.length };
}

const abiName = (p: Profile): string => `abi_${p.name.replace(/[^A-Za-z0-9]+/g, '_')}`;

function abiConst(p: Profile): string {
  const label = p.status === 'variant' ? 'VARIANT, a design no kernel has' : p.status === 'mutant' ? 'MUTANT, a seeded bug' : p.status;
  return [
    `/* ${p.name} (${label}): ${cComment(p.title)} */`,
    `static const struct abi ${abiName(p)} = {`,
    `\t.name = ${cString(p.name)},`,
    `\t.vm_attributes = ${p.privateTracking === 'vm'},`,
    `\t.conversion_ioctl = ${p.conversion === 'gmem-ioctl' ? cString(p.gmemIoctlName ?? 'KVM_SET_MEMORY_ATTRIBUTES2') : 'NULL'},`,
    `\t.conversion_cap = ${p.conversion === 'gmem-ioctl' && p.gmemAttributesCap !== undefined ? `${p.gmemAttributesCap},\t/* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES in ${p.name} */` : '0,'}`,
    `\t.init_shared_for_private_vms = ${p.initSharedForPrivateVms},`,
    `\t.no_direct_map_vm_types = ${(p.noDirectMap?.vmTypes ?? []).reduce((m, t) => m | (1n << BigInt(VM_TYPES[t])), 0n)},`,
    '};',
  ].join('\n');
}

function machineConst(s: Scenario): string {
  const machine = s.machine === 'probed' ? PROBED_MACHINE : FULL_MACHINE;
  const types = machine.vmTypes.map((t) => `1ULL << ${({ default: 'KVM_X86_DEFAULT_VM', sw_protected: 'KVM_X86_SW_PROTECTED_VM', snp: 'KVM_X86_SNP_VM', tdx: 'KVM_X86_TDX_VM' } as const)[t]}`);
  return [
    `/* The machine the expectations are written for (${s.machine}): the VM types it expects KVM to offer. */`,
    `static const __u64 __maybe_unused machine_vm_types = ${types.join(' | ')};`,
    `static const bool __maybe_unused machine_has_memory_attributes = ${machine.vmTypes.some((t) => VM_TYPE_FACTS[t].privateMem)};`,
  ].join('\n');
}

function closure(needs: Set<string>): string[] {
  // A block comes after the blocks it uses, so one pass from the last block takes in chains.
  for (let i = BLOCKS.length - 1; i >= 0; i--) {
    const b = BLOCKS[i]!;
    if (needs.has(b.name)) b.uses?.forEach((u) => needs.add(u));
  }
  return BLOCKS.filter((b) => needs.has(b.name)).map((b) => b.text);
}

/** The C program (or kselftest test) for one scenario, under each of its profiles. */
export function exportC(s: Scenario, opts: ExportOptions = {}): string {
  const kselftest = opts.kselftest ?? false;
  const profiles = s.profiles.map((name) => findProfile(name)!);
  const taken = new Set(RUNTIME_IDENTIFIERS);
  const needs = new Set<string>();
  const src = sourceLines(s);
  let first = 1;
  const fns: Emitted[] = [];
  for (const p of profiles) {
    const e = emitFunction(s, p, functionName(s, profiles.length > 1 ? p.name : undefined, taken), kselftest ? 1 : first, needs, kselftest, src);
    fns.push(e);
    first += e.steps;
  }
  const total = first - 1;
  const describe = s.description ? s.description.trim().split('\n').map((l) => ` * ${cComment(l)}`.trimEnd()) : [];
  const header = [
    ...(kselftest ? ['// SPDX-License-Identifier: GPL-2.0'] : []),
    '/*',
    ` * ${cComment(s.name)}`,
    ...(describe.length ? [' *', ...describe] : []),
    ' *',
    ` * Exported by gmemkit from ${cComment(basename(s.file))}, profile${profiles.length > 1 ? 's' : ''} ${profiles.map((p) => p.name).join(', ')}.`,
    ...profiles.filter((p) => p.status === 'variant' || p.status === 'mutant').map((p) => ` * ${p.name} is a ${p.status === 'variant' ? 'VARIANT (a design no kernel has)' : 'MUTANT (a seeded bug)'}: expectations under it are not mainline behaviour.`),
    kselftest
      ? ' * Build inside tools/testing/selftests/kvm (kselftest_harness.h); run as root with /dev/kvm.'
      : ` * Build: cc -Wall -Wextra -O1 -o ${cFileName(s).replace(/\.c$/, '')} ${cFileName(s)}; run as root with /dev/kvm.`,
    ...(kselftest ? [] : [' * Prints TAP; exits 0 when every step passes, 1 on a failure, 4 (skip) when the kernel lacks what the scenario needs.']),
    ' */',
  ].join('\n');
  const blocks = closure(needs);
  const parts = [
    header, INCLUDES, ...(kselftest ? ['#include "kselftest_harness.h"'] : []), UAPI,
    '/* ---- Support: a step\'s outcome and expectation, and each op done as gmemkit\'s linux backend does it ---- */',
    CORE, ABI,
    ...profiles.map(abiConst), machineConst(s), FAULTS, ...blocks,
    ...(kselftest ? [KSELFTEST] : [TAP, MAIN_SUPPORT]),
    '/* ---- The scenario ---- */',
    ...fns.map((f) => f.body),
  ];
  if (kselftest) parts.push('TEST_HARNESS_MAIN');
  else {
    parts.push([
      'int main(void)',
      '{',
      '\tprintf("TAP version 13\\n");',
      '\topen_kvm();',
      `\tprintf("1..%d\\n", ${total});`,
      ...fns.map((f) => `\t${f.fn}();`),
      '\treturn finish();',
      '}',
    ].join('\n'));
  }
  return `${parts.join('\n\n')}\n`;
}
