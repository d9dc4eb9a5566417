// What every `kst` subcommand exports (commands/<name>.ts). Its own module so that the
// commands do not import main.ts, which loads them (no import cycle).
export interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}
