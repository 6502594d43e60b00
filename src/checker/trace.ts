// Counterexample steps: the text of an edge label and the variables a step changed, and the
// plain-text rendering of a counterexample as numbered steps.
// Pure formatting: it must never run a model or touch search state.
import type { Counterexample, EdgeLabel, TraceStep, Value } from './types.js';

export function labelText(l: EdgeLabel): string {
  const ps = Object.entries(l.params).map(([k, v]) => `${k}=${String(v)}`);
  return `${l.process}: ${l.action}(${ps.join(', ')})`;
}

export function makeStep(
  step: number,
  label: EdgeLabel,
  before: Readonly<Record<string, Value>> | undefined,
  after: Readonly<Record<string, Value>> | undefined,
): TraceStep {
  const changes: string[] = [];
  if (before && after) {
    for (const k of Object.keys(after)) {
      if (before[k] !== after[k]) changes.push(`${k}: ${String(before[k])} -> ${String(after[k])}`);
    }
  }
  return {
    step, process: label.process, action: label.action, params: label.params,
    text: labelText(label), changes,
  };
}

/** Renders a counterexample as lines: header, numbered steps with their changes. */
export function formatCounterexample(ce: Counterexample): string[] {
  const out: string[] = [];
  const kind = ce.kind === 'step' ? 'step assertion' : ce.kind === 'cycle' ? 'fair cycle' : 'invariant';
  out.push(`counterexample: ${ce.property} (${kind}), ${ce.steps.length} steps, depth ${ce.depth}`);
  out.push(`  ${ce.message}`);
  for (const s of ce.steps) {
    if (ce.cycleStart === s.step) out.push('  -- cycle starts here (the steps below repeat forever) --');
    const failing = ce.kind === 'step' && s.step === ce.steps.length ? '   <-- fails' : '';
    out.push(`  ${String(s.step).padStart(4)}. ${s.text}${failing}`);
    for (const c of s.changes) out.push(`          ${c}`);
  }
  if (ce.kind === 'cycle' && ce.cycleStart === undefined) {
    out.push('  -- the last state has no enabled step: the request stays outstanding --');
  }
  return out;
}
