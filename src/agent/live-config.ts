// Live configuration: a new version of the config file is loaded exactly as at start (same
// file, environment and --set flags: the `kst validate` loader), compared with the running
// one, and either applied whole or rejected whole:
//
//   invalid       -> the running config stays; Warning Event InvalidConfig on the Node with
//                    the loader's errors, a log line, kst_config_reload_total{result="invalid"}
//   needs restart -> the running config stays; Warning Event ConfigNeedsRestart naming the
//                    fields, result="needs_restart"
//   unchanged     -> nothing (a comment, a reordered map), result="unchanged"
//   live          -> apply(next): the model, peers and BFD follow on the next converge;
//                    generation + 1, Normal Event ConfigApplied, result="ok"
//
// Never half-applied: only a version whose every change is live is applied, and then all of it.
import { Counter, Gauge } from 'prom-client';
import { classifyConfigChange, configHash, ConfigError, loadConfig, type Config, type ConfigChange, type ConfigIssue, type ConfigSources, type RunningParts } from '../config/index.js';
import { metricsRegistry, type ConfigReport, type EventSink, type Logger, type ObjectRef } from '../observe/index.js';

export type ReloadResult = NonNullable<ConfigReport['lastReload']>['result'];

export type ConfigReloadReport = ConfigReport;

export interface LiveConfigOptions {
  readonly initial: Config;
  /** How the running config was loaded; a reload uses the same sources. */
  readonly sources: ConfigSources;
  readonly running: RunningParts;
  /** Applies a live change (never throws for a valid config: the loops retry what fails). */
  readonly apply: (next: Config, change: Extract<ConfigChange, { kind: 'live' }>) => void;
  readonly events: EventSink;
  readonly nodeRef: ObjectRef;
  readonly logger: Logger;
  /** Loads a version (default: loadConfig); tests pass their own. */
  readonly load?: (sources: ConfigSources) => Config;
}

const reloads = (): Counter<'result'> =>
  (metricsRegistry.getSingleMetric('kst_config_reload_total') as Counter<'result'> | undefined) ??
  new Counter({ name: 'kst_config_reload_total', help: 'Reloads of the config file by result: ok (applied live), invalid, unchanged, needs_restart (the running config stays).', labelNames: ['result'], registers: [metricsRegistry] });
const generationGauge = (): Gauge =>
  (metricsRegistry.getSingleMetric('kst_config_generation') as Gauge | undefined) ??
  new Gauge({ name: 'kst_config_generation', help: 'Generation of the running configuration: 1 at start, +1 per version applied live.', registers: [metricsRegistry] });
const infoGauge = (): Gauge<'hash'> =>
  (metricsRegistry.getSingleMetric('kst_config_info') as Gauge<'hash'> | undefined) ??
  new Gauge({ name: 'kst_config_info', help: 'Always 1; the label hash is the running configuration\'s fingerprint (as in kst status).', labelNames: ['hash'], registers: [metricsRegistry] });

/** One loader issue for an Event; a password field's value never appears (it may be a real one). */
function describeIssue(i: ConfigIssue): string {
  if (/password$/i.test(i.path)) return `${i.path}: not accepted (value not shown): use passwordSecretRef or passwordFile`;
  return `${i.path || '(file)'}: ${i.message}`;
}

export class LiveConfig {
  private running: Config;
  private generation = 1;
  private hash: string;
  private last: ConfigReloadReport['lastReload'];
  private readonly counter = reloads();
  private readonly gen = generationGauge();
  private readonly info = infoGauge();

  constructor(private readonly opts: LiveConfigOptions) {
    this.running = opts.initial;
    this.hash = configHash(opts.initial);
    for (const r of ['ok', 'invalid', 'unchanged', 'needs_restart'] as const) this.counter.inc({ result: r }, 0);
    this.gen.set(this.generation);
    this.info.reset();
    this.info.set({ hash: this.hash }, 1);
  }

  get config(): Config {
    return this.running;
  }

  report(): ConfigReloadReport {
    const file = this.opts.sources.file ?? this.opts.sources.env?.KST_CONFIG;
    return { generation: this.generation, hash: this.hash, ...(file ? { file } : {}), ...(this.last ? { lastReload: this.last } : {}) };
  }

  /**
   * Loads the file again and applies or rejects the new version; returns what happened.
   * `quiet`: an unchanged result is not counted or logged (the check when the watch starts,
   * which closes the gap between the load at start and the watcher's first read).
   */
  reload(opts: { readonly quiet?: boolean } = {}): ReloadResult {
    const { events, nodeRef } = this.opts;
    let next: Config;
    try {
      next = (this.opts.load ?? loadConfig)({ ...this.opts.sources, resolveNodeName: true });
    } catch (err) {
      const message = err instanceof ConfigError ? err.issues.map(describeIssue).join('; ') : err instanceof Error ? err.message : String(err);
      return this.done('invalid', `new configuration rejected, generation ${this.generation} (${this.hash}) stays in force: ${message}`, () => events.warning(nodeRef, 'InvalidConfig', `${message} (the running configuration stays)`));
    }
    const change = classifyConfigChange(this.running, next, this.opts.running);
    if (change.kind === 'unchanged' && opts.quiet) return 'unchanged';
    if (change.kind === 'unchanged') return this.done('unchanged', `configuration file changed, same configuration (${this.hash})`);
    if (change.kind === 'needs-restart') {
      return this.done('needs_restart', `new configuration not applied, generation ${this.generation} (${this.hash}) stays in force: ${change.why}; restart the agent to use it`, () =>
        events.warning(nodeRef, 'ConfigNeedsRestart', `${change.why}; the running configuration stays until the agent restarts (changed: ${change.changed.join(', ')})`),
      );
    }
    this.running = next;
    this.generation += 1;
    this.hash = configHash(next);
    this.gen.set(this.generation);
    this.info.reset();
    this.info.set({ hash: this.hash }, 1);
    this.opts.apply(next, change);
    const message = `configuration generation ${this.generation} (${this.hash}) applied live: ${change.changed.join(', ')}`;
    return this.done('ok', message, () => events.normal(nodeRef, 'ConfigApplied', message));
  }

  private done(result: ReloadResult, message: string, event?: () => void): ReloadResult {
    this.counter.inc({ result });
    this.last = { result, at: new Date().toISOString(), message };
    if (result === 'ok' || result === 'unchanged') this.opts.logger.info(`config: ${message}`, { area: 'config' });
    else this.opts.logger.warn(`config: ${message}`, { area: 'config' });
    event?.();
    return result;
  }
}
