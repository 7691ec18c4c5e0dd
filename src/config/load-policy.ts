// The file-system edge of policy parsing: read the file, parse it, and format
// the outcome for `detour check -c FILE`.
import { readFile } from 'node:fs/promises';
import { parsePolicy } from './parse-policy.js';
import { checkFiles } from './check-files.js';
import { formatPolicyError, type ParseResult } from './policy.js';

type Env = Readonly<Record<string, string | undefined>>;

export async function loadPolicyFile(file: string, env: Env = process.env): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { ok: false, errors: [{ file, line: 1, col: 1, path: '(file)', message: `cannot read the policy file: ${reason}` }] };
  }
  return parsePolicy(text, file, env, { checkFiles: (root, baseDir) => checkFiles(root, baseDir, Date.now()) });
}

export interface CheckReport {
  readonly ok: boolean;
  /** One `FILE:LINE:COL path: message` line per problem, in file order; empty when the file is valid. */
  readonly lines: readonly string[];
  /** Same format, for valid settings that weaken security (`verify: false`); present only when there are some. */
  readonly warnings?: readonly string[];
}

export async function checkPolicyFile(file: string, env: Env = process.env): Promise<CheckReport> {
  const result = await loadPolicyFile(file, env);
  if (!result.ok) return { ok: false, lines: result.errors.map(formatPolicyError) };
  return result.warnings ? { ok: true, lines: [], warnings: result.warnings.map(formatPolicyError) } : { ok: true, lines: [] };
}
