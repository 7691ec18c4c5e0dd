// The operator's subcommands (status, drain, pin, failback, ...): thin clients
// of the admin API. They print a sentence or a table, never a stack trace, and
// exit 0 on success, 1 when the API refused or could not be reached, 2 on
// usage errors. All I/O goes through `io` so tests run them in-process.
import { CommanderError, type Command } from 'commander';
import ms from 'ms';
import { DetourError } from '../errors.js';
import { AdminClient } from './admin-client.js';
import type { DrainTarget, GatewayEvent, RouteStatus, SiteStatus, StatusDocument } from './admin-control.js';

export interface CliIo {
  /** Write-like: strings carry their own trailing newline (as commander's writeOut does). */
  out(s: string): void;
  err(s: string): void;
  env: Record<string, string | undefined>;
  setExitCode(n: number): void;
}

export const defaultAdminUrl = 'http://127.0.0.1:9090';
const recentEventCount = 10;

export const exitCodes = { ok: 0, apiError: 1, usage: 2 } as const;

interface CommonOptions {
  readonly admin?: string;
}

interface DrainOptions extends CommonOptions {
  readonly building?: string;
  readonly site?: string;
}

/**
 * Adds the admin subcommands to `program`. Commander's own usage errors (missing
 * argument, unknown option) in these subcommands set exit code 2 and are thrown
 * as a CommanderError with exitCode 2 (0 for --help) instead of calling
 * process.exit; the caller of parseAsync should catch CommanderError and return.
 */
export function registerAdminCommands(program: Command, io: CliIo): void {
  const add = (name: string, description: string): Command => {
    const cmd = program
      .command(name)
      .description(description)
      .option('--admin <url>', `admin API URL (default: $DETOUR_ADMIN_URL or ${defaultAdminUrl})`)
      .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: (s, write) => write(s) })
      .exitOverride((err) => {
        const exitCode = err.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
        io.setExitCode(exitCode);
        throw new CommanderError(exitCode, err.code, err.message);
      });
    return cmd;
  };
  const run = (opts: CommonOptions, fn: (client: AdminClient) => Promise<void>): Promise<void> => runWithClient(io, opts, fn);

  add('status', 'show routes, sites and recent events')
    .option('--json', 'print the raw status document')
    .action((opts: CommonOptions & { json?: boolean }) =>
      run(opts, async (client) => {
        const doc = await client.status();
        io.out(opts.json === true ? `${JSON.stringify(doc, null, 2)}\n` : formatStatus(doc, Date.now()));
      }),
    );

  const drainCommand = (name: 'drain' | 'undrain', description: string): void => {
    const command = add(name, description)
      .option('--building <name>', 'every site in this building')
      .option('--site <name>', 'one site');
    if (name === 'drain') command.option('--force', 'drain even if a route is left with no eligible site (refused otherwise)');
    command
      .action((opts: DrainOptions & { force?: boolean }) => {
        const target = toDrainTarget(opts);
        if (target === undefined) return usageError(io, `${name} needs exactly one of --building NAME or --site NAME`);
        return run(opts, async (client) => {
          const result = name === 'undrain' ? await client.undrain(target)
            : opts.force === true ? await client.drain(target, { force: true }) : await client.drain(target);
          io.out(`${result.message}\n`);
        });
      });
  };
  drainCommand('drain', 'stop sending new requests to a building or a site');
  drainCommand('undrain', 'let a drained building or site serve again');

  add('pin', 'force a route onto one site until unpinned')
    .argument('<route>', 'route name')
    .argument('<site>', 'site name')
    .action((route: string, site: string, opts: CommonOptions) => run(opts, async (client) => printMessage(io, await client.pin(route, site))));

  add('unpin', 'release a pinned route')
    .argument('<route>', 'route name')
    .action((route: string, opts: CommonOptions) => run(opts, async (client) => printMessage(io, await client.unpin(route))));

  add('failback', 'approve a pending manual failback of a route')
    .argument('<route>', 'route name')
    .option('--force', 'skip the integrity gate (primary and backup may disagree)')
    .action((route: string, opts: CommonOptions & { force?: boolean }) =>
      run(opts, async (client) => printMessage(io, await client.failback(route, { force: opts.force === true }))),
    );

  add('failover', 'approve a pending manual failover of a route')
    .argument('<route>', 'route name')
    .action((route: string, opts: CommonOptions) => run(opts, async (client) => printMessage(io, await client.failover(route))));

  add('reload', 'make the gateway re-read its policy file').action((opts: CommonOptions) =>
    run(opts, async (client) => {
      const result = await client.reload();
      if (result.ok) return printMessage(io, result);
      io.err(`error: ${result.error}\n${result.lines.map((l) => `  ${l}\n`).join('')}`);
      io.setExitCode(exitCodes.apiError);
    }),
  );
}

async function runWithClient(io: CliIo, opts: CommonOptions, fn: (client: AdminClient) => Promise<void>): Promise<void> {
  let client: AdminClient;
  try {
    client = new AdminClient({ baseUrl: resolveAdminUrl(opts.admin, io.env), token: nonEmpty(io.env.DETOUR_ADMIN_TOKEN) });
  } catch (e) {
    return usageError(io, (e as Error).message);
  }
  io.setExitCode(exitCodes.ok);
  try {
    await fn(client);
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n`);
    const hint = hintFor(e, io.env);
    if (hint !== undefined) io.err(`hint: ${hint}\n`);
    io.setExitCode(exitCodes.apiError);
  }
}

function usageError(io: CliIo, message: string): void {
  io.err(`error: ${message}\n`);
  io.setExitCode(exitCodes.usage);
}

function printMessage(io: CliIo, result: { readonly message: string }): void {
  io.out(`${result.message}\n`);
}

function resolveAdminUrl(flag: string | undefined, env: CliIo['env']): string {
  return nonEmpty(flag) ?? nonEmpty(env.DETOUR_ADMIN_URL) ?? defaultAdminUrl;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}

function toDrainTarget(opts: DrainOptions): DrainTarget | undefined {
  if (opts.building !== undefined && opts.site === undefined) return { kind: 'building', name: opts.building };
  if (opts.site !== undefined && opts.building === undefined) return { kind: 'site', name: opts.site };
  return undefined;
}

function hintFor(e: unknown, env: CliIo['env']): string | undefined {
  if (!(e instanceof DetourError)) return undefined;
  if (e.code === 'unauthorized' && nonEmpty(env.DETOUR_ADMIN_TOKEN) === undefined) return "set DETOUR_ADMIN_TOKEN to the gateway's admin.token";
  if (e.code === 'unreachable' || e.code === 'timeout') return 'is the gateway running? point --admin (or DETOUR_ADMIN_URL) at its admin listener';
  return undefined;
}

// --- human status -------------------------------------------------------------

export function formatStatus(doc: StatusDocument, nowMs: number): string {
  const out: string[] = [];
  const store = `${doc.stateStore.kind} (${doc.stateStore.up ? 'up' : 'DOWN'})`;
  out.push(`detour ${doc.version}  policy ${doc.policyFile}  table v${doc.tableVersion}  state ${store}`, '');

  out.push('ROUTES');
  out.push(
    ...formatTable(
      ['NAME', 'PRIO', 'STATE', 'ACTIVE', 'WEIGHTS', 'SINCE', 'REASON'],
      doc.routes.map((r) => [r.name, String(r.priority), r.state, r.active ?? '-', formatWeights(r), formatAge(r.since, nowMs), r.reason]),
    ),
  );
  const notes = doc.routes.flatMap(routeNotes);
  if (notes.length > 0) out.push('', ...notes);

  out.push('', 'SITES');
  out.push(
    ...formatTable(
      ['NAME', 'HEALTH', 'BUILDING', 'DRAINED', 'SINCE', 'REASON'],
      doc.sites.map((s) => [s.name, s.health, s.building, formatDrained(s), formatAge(s.since, nowMs), s.reason]),
    ),
  );
  out.push('', `DRAINS  buildings: ${listOrDash(doc.drains.buildings)}  sites: ${listOrDash(doc.drains.sites)}`);
  if (doc.warnings !== undefined && doc.warnings.length > 0) out.push('', 'WARNINGS', ...doc.warnings.map((w) => `  ${w}`));
  // Worker processes (workers: N | auto); a single-process gateway has nothing to add.
  if (doc.workers && doc.workers.configured !== 1) {
    const w = doc.workers;
    out.push('', `WORKERS  ${w.count} serving of ${w.configured === 'auto' ? 'auto' : w.configured} configured  restarts: ${w.restarts}`);
    out.push(...formatTable(
      ['ID', 'PID', 'STATE', 'TABLE', 'STARTED'],
      w.workers.map((x) => [String(x.id), String(x.pid ?? '-'), x.state, `v${x.tableVersion}`, formatAge(x.startedAt, nowMs)]),
    ));
  }

  const events = doc.events.slice(-recentEventCount);
  out.push('', `RECENT EVENTS (${events.length} of ${doc.events.length})`);
  out.push(...(events.length > 0 ? events.map(formatEvent) : ['  (none)']));
  return `${out.join('\n')}\n`;
}

function routeNotes(r: RouteStatus): string[] {
  const notes: string[] = [];
  const arg = quoteArg(r.name);
  if (r.pendingFailover !== null) {
    notes.push(`${r.name}: failover ${r.pendingFailover.from} -> ${r.pendingFailover.to} waiting for approval: detour failover ${arg}`);
  }
  if (r.state === 'awaiting-approval' || (r.pendingFailback && r.blocked?.code === 'approval')) {
    notes.push(`${r.name}: failback waiting for approval: detour failback ${arg}`);
  }
  if (r.blocked !== null && r.blocked.code !== 'approval') notes.push(`${r.name}: failback blocked (${r.blocked.code}): ${r.blocked.message}`);
  if (r.pinnedTo !== null) notes.push(`${r.name}: pinned to ${r.pinnedTo}; release with: detour unpin ${arg}`);
  if (r.integrity !== null && !r.integrity.ok) notes.push(`${r.name}: integrity check failing: ${r.integrity.detail}`);
  return notes.map((n) => `  ${n}`);
}

/** Suggested commands must survive copy-paste into a shell. */
function quoteArg(s: string): string {
  return /^[\w.:@/+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function formatWeights(r: RouteStatus): string {
  return r.weights.length === 0 ? '-' : r.weights.map((w) => `${w.site} ${w.weight}%`).join(' ');
}

function formatDrained(s: SiteStatus): string {
  return s.drained ? `yes (${s.drainedBy.join('+') || 'drained'})` : 'no';
}

function formatEvent(e: GatewayEvent): string {
  const date = new Date(e.time);
  const time = Number.isNaN(date.getTime()) ? e.time : date.toTimeString().slice(0, 8);
  return `  ${time}  ${e.type.padEnd(16)} ${e.message}`;
}

function formatAge(iso: string, nowMs: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '-';
  return `${ms(Math.max(0, nowMs - t))} ago`;
}

function listOrDash(items: readonly string[]): string {
  return items.length === 0 ? '-' : items.join(', ');
}

function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [line(headers), ...rows.map(line)];
}
