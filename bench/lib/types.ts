/** One number a scenario measured in one repetition. */
export interface Sample {
  name: string;
  value: number;
  unit: string;
  /** The same quantity for the baseline measured in the same run, when there is one. */
  baseline?: number;
  /** Human-readable target, e.g. "≥ 47.5 req/s". */
  target?: string;
  /** Decides `met` from the (median) value and baseline; absent: reported only. */
  meets?: (value: number, baseline: number | undefined) => boolean;
  /** A breakdown behind the value (e.g. Redis commands by name), kept in the results file as measured. */
  detail?: unknown;
}

export interface ScenarioContext {
  quick: boolean;
  log: (message: string) => void;
}

export interface Scenario {
  name: string;
  run(context: ScenarioContext): Promise<Sample[]>;
}

/** What the results file holds for each metric (medians over repetitions). */
export interface ResultRow {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  target: string | null;
  met: boolean | null;
  repetitions: number;
  spread: { min: number; max: number };
  baselineSpread: { min: number; max: number } | null;
  /** Every repetition's value (and baseline), in order. */
  values: number[];
  baselines: number[];
  /** Each repetition's breakdown, when the scenario gives one. */
  details?: unknown[];
}
