// `gmemkit ops`: every scenario op with its fields, read from the op table the loader validates
// against (src/scenario/ops.ts), so the listing is exactly what a scenario may write.
import { ALL_OPS, KERNEL_OPS, type FieldKind, type FieldSpec, type OpSpec } from '../scenario/ops.js';
import { UsageError } from './usage.js';

function kindText(k: FieldKind): string {
  switch (k.type) {
    case 'size': return 'size';
    case 'bool': return 'true|false';
    case 'bytes': return 'bytes';
    case 'cap': return 'KVM_CAP_ name or number';
    case 'flags': {
      const names = Object.keys(k.table);
      return names.length ? `list of ${k.what}: ${names.join(', ')} (or numbers)` : `${k.what} (number)`;
    }
    case 'named': return `${k.what}: ${Object.keys(k.table).join(', ')} (or a number)`;
    case 'choice': return Object.keys(k.table).join('|');
    case 'handle': {
      const raw = k.raw === 'number' ? ' or a number' : k.raw === 'number-or-null' ? ', a number or null' : '';
      return `${k.kinds.join('/')} handle${raw}`;
    }
  }
}

function fieldText(name: string, f: FieldSpec): string {
  const status = f.required ? 'required' : f.default !== undefined ? `default ${JSON.stringify(f.default)}` : 'optional';
  return `${name}: ${kindText(f.kind)}; ${status}`;
}

function opText(name: string, spec: OpSpec): string {
  const lines = [`${name}${spec.produces ? ` (as: names a ${spec.produces} handle)` : ''}`, `    ${spec.summary}`];
  for (const [f, s] of Object.entries(spec.fields)) lines.push(`    - ${fieldText(f, s)}`);
  if (spec.oneOf) lines.push(`    exactly one of: ${spec.oneOf.join(', ')}`);
  return lines.join('\n');
}

/** The listing of the named ops (every op when none is named). */
export function opsListing(names: readonly string[]): string {
  for (const n of names) {
    if (!(n in ALL_OPS)) throw new UsageError(`unknown op '${n}'; ops: ${Object.keys(ALL_OPS).join(', ')}`);
  }
  const pick = (table: Readonly<Record<string, OpSpec>>) =>
    Object.entries(table).filter(([n]) => names.length === 0 || names.includes(n)).map(([n, s]) => opText(n, s));
  const kernel = pick(KERNEL_OPS);
  const user = pick(Object.fromEntries(Object.entries(ALL_OPS).filter(([n]) => !(n in KERNEL_OPS))));
  const out: string[] = [];
  if (kernel.length) out.push('# Kernel interface', '', ...kernel);
  if (user.length) out.push(...(out.length ? [''] : []), '# Userspace subsystems and the conversion manager', '', ...user);
  out.push('', "Every step may also have 'as: NAME' (where the op makes a handle) and 'expect:'.");
  return out.join('\n');
}
