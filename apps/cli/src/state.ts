import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What a run has done, kept in the output folder so a second run resumes instead of
 * resubmitting: which inputs went into which batch, and which results were saved.
 */
export interface RunState {
  version: 1;
  /** Absolute path of the folder or manifest this state belongs to. */
  input: string;
  /** Submitted batches, each with the client_refs (file names) it carries. */
  batches: { id: string; refs: string[] }[];
  /** Direct uploads not made a batch yet: their files go (or went) straight to S3. */
  uploads?: PendingUpload[];
  /** Items that ended: client_ref → outcome. */
  ended: Record<string, { status: 'succeeded' | 'failed' | 'canceled'; file?: string; error?: string }>;
}

export interface PendingUpload {
  id: string;
  refs: string[];
  expiresAt: string;
}

const STATE_FILE = '.cutout-state.json';

export async function loadState(outDir: string, input: string): Promise<RunState> {
  try {
    const state = JSON.parse(await readFile(join(outDir, STATE_FILE), 'utf8')) as RunState;
    if (state.version === 1 && state.input === input) return state;
    throw new Error(`${join(outDir, STATE_FILE)} belongs to another input (${state.input}); use another --out folder`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, input, batches: [], ended: {} };
    throw error;
  }
}

/** Written to a temporary file and renamed, so a kill mid-write leaves the previous state whole. */
export async function saveState(outDir: string, state: RunState): Promise<void> {
  const path = join(outDir, STATE_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(state));
  await rename(`${path}.tmp`, path);
}
