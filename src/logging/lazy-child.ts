import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, Logger } from 'pino';

type AnyLogFn = (...args: unknown[]) => void;

/**
 * A request's logger, made the first time it is written to. Fastify gives every request a child
 * logger bound to its request id; making one runs pino's redaction over the bindings (with the
 * wildcard paths of logging/options.ts: ~3 µs and ~1 KB of garbage a request). Most requests
 * write nothing through it: their one line, `request completed`, is written by the log
 * controller (request-log.ts), which only asks whether its level is enabled. So the child is made
 * on first use, with the same bindings and options, and every line is what it would have been.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  #real: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly childBindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The child logger itself (made now if it was not yet). */
  get real(): Logger {
    return (this.#real ??= this.parent.child(this.childBindings, this.options));
  }

  get level(): LevelWithSilentOrString {
    return this.#real?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.real.level = level;
  }

  /** Answered by the parent while the child does not exist and has no level of its own. */
  isLevelEnabled(level: LevelWithSilentOrString): boolean {
    return this.#real || this.options.level ? this.real.isLevelEnabled(level) : this.parent.isLevelEnabled(level);
  }

  fatal(...args: unknown[]): void {
    (this.real.fatal as AnyLogFn)(...args);
  }

  error(...args: unknown[]): void {
    (this.real.error as AnyLogFn)(...args);
  }

  warn(...args: unknown[]): void {
    (this.real.warn as AnyLogFn)(...args);
  }

  info(...args: unknown[]): void {
    (this.real.info as AnyLogFn)(...args);
  }

  debug(...args: unknown[]): void {
    (this.real.debug as AnyLogFn)(...args);
  }

  trace(...args: unknown[]): void {
    (this.real.trace as AnyLogFn)(...args);
  }

  silent(...args: unknown[]): void {
    (this.real.silent as AnyLogFn)(...args);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }

  bindings(): Bindings {
    return this.real.bindings();
  }
}

/** Fastify's childLoggerFactory, lazily (see LazyChildLogger). */
export function lazyChildLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(logger as Logger, bindings, options);
}
