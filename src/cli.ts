#!/usr/bin/env node
// Composition root: parse arguments, load the policy, start the gateway, wire
// signals and file watching to reload and shutdown.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { checkPolicyFile, loadPolicyFile } from './config/load-policy.js';
import { formatPolicyError } from './config/policy.js';
import { PolicyWatcher } from './config/watch-policy.js';
import { startGateway } from './gateway.js';
import { materialFiles } from './tls/policy-material.js';
import { createLogger } from './logger.js';
import { registerAdminCommands } from './admin/cli-commands.js';
import { runDemo } from './demo/run-demo.js';
import { VERSION } from './version.js';

export interface CliIo {
  /** Write as-is: callers end their lines with a newline. */
  out(s: string): void;
  err(s: string): void;
  env: Record<string, string | undefined>;
  setExitCode(n: number): void;
}

export function buildProgram(io: CliIo): Command {
  const program = new Command()
    .name('detour')
    .description('Traffic failover gateway: one stable endpoint in front of primary, backup and DR sites.')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  program.command('check')
    .description('validate a policy file: exit 0 if valid, else 1 and one line per problem (FILE:LINE:COL path: message)')
    .requiredOption('-c, --config <file>', 'policy file')
    .action(async (opts: { config: string }) => {
      const result = await checkPolicyFile(opts.config, io.env);
      if (result.ok) io.out(`${opts.config}: ok\n`);
      for (const line of [...(result.warnings ?? []), ...result.lines]) io.err(`${line}\n`);
      io.setExitCode(result.ok ? 0 : 1);
    });

  program.command('start')
    .description('run the gateway with a policy file (SIGHUP or a file change reloads it; SIGTERM drains and exits)')
    .requiredOption('-c, --config <file>', 'policy file')
    .option('--no-watch', 'do not reload when the policy file changes')
    .option('--log-level <level>', 'trace, debug, info, warn, error', io.env.DETOUR_LOG_LEVEL ?? 'info')
    .option('--replica-id <id>', 'this replica\'s name in the shared state (default: host-pid-random, or DETOUR_REPLICA_ID)', io.env.DETOUR_REPLICA_ID)
    .action(async (opts: { config: string; watch: boolean; logLevel: string }) => {
      await runStart(opts, io);
    });

  program.command('demo')
    .description('simulate a building fire and recovery in front of your eyes (sites, gateway, client load)')
    .option('--fast', 'shorter pauses between acts (used by the tests)')
    .option('--plain', 'no live table redraws: one line per update (for logs and CI)')
    .action(async (opts: { fast?: boolean; plain?: boolean }) => {
      const summary = await runDemo({
        fast: opts.fast === true,
        plain: opts.plain === true || !process.stdout.isTTY,
        out: (line) => io.out(`${line}\n`),
      });
      io.setExitCode(summary.failedRequests === 0 ? 0 : 1);
    });

  registerAdminCommands(program, io);
  return program;
}

async function runStart(opts: { config: string; watch: boolean; logLevel: string; replicaId?: string }, io: CliIo): Promise<void> {
  const logger = createLogger({ level: opts.logLevel });
  const loaded = await loadPolicyFile(opts.config, io.env);
  if (!loaded.ok) {
    for (const e of loaded.errors) io.err(`${formatPolicyError(e)}\n`);
    io.setExitCode(1);
    return;
  }
  const replicaId = opts.replicaId?.trim();
  if (replicaId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/.test(replicaId)) {
    io.err(`detour: --replica-id must be 1 to 100 letters, digits, '.', '_', ':' or '-' (got ${JSON.stringify(opts.replicaId)})\n`);
    io.setExitCode(2);
    return;
  }
  const gateway = await startGateway({ policy: loaded.policy, logger, watch: opts.watch, ...(replicaId ? { replicaId } : {}) });
  const reload = async (why: string) => {
    const result = await gateway.reload();
    watchMaterial();
    if (result.ok) logger.info({ trigger: why }, result.message);
    else logger.error({ trigger: why, errors: result.errors.map(formatPolicyError) }, 'policy reload failed; keeping the last good policy');
  };
  // The policy file itself is watched by the gateway (opts.watch).
  // Certificates, keys and the token file are watched too (cert-manager, Vault agents rewrite them in place).
  const fileWatchers = new Map<string, PolicyWatcher>();
  const watchMaterial = () => {
    if (!opts.watch) return;
    const wanted = new Set(materialFiles(gateway.control.policy));
    for (const [file, w] of fileWatchers) if (!wanted.has(file)) { w.close(); fileWatchers.delete(file); }
    for (const file of wanted) {
      if (fileWatchers.has(file)) continue;
      try {
        fileWatchers.set(file, new PolicyWatcher({ file, onChange: () => void reload(`${file} changed`) }));
      } catch (err) {
        logger.warn({ file, err: (err as Error).message }, 'cannot watch a TLS or token file; SIGHUP or POST /reload still re-read it');
      }
    }
  };
  watchMaterial();
  process.on('SIGHUP', () => void reload('SIGHUP'));
  // logrotate moved the access log away: write to a new file at the same path.
  process.on('SIGUSR1', () => {
    gateway.reopenLogs();
    logger.info('SIGUSR1: access log reopened');
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, inFlight: undefined }, `${signal}: draining in-flight requests, then exiting`);
    for (const w of fileWatchers.values()) w.close();
    void gateway.close().then(() => {
      logger.info('detour stopped');
      logger.flush?.();
      process.exitCode = 0;
      // Let the logger transport flush before the event loop empties.
      setTimeout(() => process.exit(0), 100).unref();
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const io: CliIo = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    setExitCode: (n) => { exitCode = n; },
  };
  try {
    await buildProgram(io).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.err(`detour: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  return exitCode;
}

function isEntryPoint(): boolean {
  // Run as a program (node dist/cli.js, or the `detour` bin symlink), not imported by a test.
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv).then((code) => {
    if (code !== 0) process.exitCode = code;
  }, (err: unknown) => {
    process.stderr.write(`detour: ${String(err)}\n`);
    process.exitCode = 1;
  });
}
