import type { Scenario } from './scenario.js';

type Mitigation = Scenario['assumptions']['mitigations'][number];
export type Condition = Scenario['assumptions']['hostStart']['when'];

/** What the mitigations applied so far do to the join path, together. */
export interface MitigationEffects {
  shedding: boolean;
  capacityFactor: number;
  admissionCap: number | null;
  attackFiltered: number | null;
  /** Names of the mitigations in force (conditions can wait for one). */
  applied: Set<string>;
}

/**
 * The scenario's mitigations over the night: each applied when its time or condition comes, undone
 * when its `until` passes; after any change the effects are recomputed in the order applied.
 */
export class Mitigations {
  readonly effects: MitigationEffects = { shedding: false, capacityFactor: 1, admissionCap: null, attackFiltered: null, applied: new Set() };
  private readonly inForce = new Set<Mitigation>();

  constructor(private readonly scenario: Scenario) {}

  /** Applies those that come due at `t` and undoes those past their `until`; says so in `events`. */
  update(t: number, holds: (c: Condition) => boolean, events: string[]): void {
    const at = (x: string) => this.scenario.at(x);
    let changed = false;
    for (const x of this.scenario.assumptions.mitigations) {
      if (this.inForce.has(x)) {
        if (x.until && t >= at(x.until)) {
          this.inForce.delete(x);
          this.effects.applied.delete(x.name);
          events.push(`mitigation undone: ${x.name}`);
          changed = true;
        }
        continue;
      }
      if (this.effects.applied.has(x.name)) continue;
      if (x.until && t >= at(x.until)) continue;
      const due = x.at ? t >= at(x.at) : holds(x.when!);
      if (!due) continue;
      this.inForce.add(x);
      this.effects.applied.add(x.name);
      events.push(`mitigation: ${x.name}`);
      changed = true;
    }
    if (!changed) return;
    const e = this.effects;
    e.shedding = false;
    e.capacityFactor = 1;
    e.admissionCap = null;
    e.attackFiltered = null;
    for (const x of this.inForce) {
      if (x.shedding) e.shedding = true;
      e.capacityFactor *= x.capacityFactor;
      if (x.admissionCap !== null) e.admissionCap = x.admissionCap;
      if (x.attackFiltered !== undefined) e.attackFiltered = x.attackFiltered;
    }
  }
}
