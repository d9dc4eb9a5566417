import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'];

/**
 * Every subcommand's flag handling: strict parsing, `--help`, and a usage error (exit 2)
 * that names the command. Returns the values, or the exit code to return right away.
 */
export function parseCommandArgs<O extends Options>(command: string, args: string[], options: O, help: string): { values: Values<O> } | { exit: number } {
  let values: Values<O>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    console.error(`kst ${command}: ${(err as Error).message}\n\n${help}`);
    return { exit: 2 };
  }
  if ((values as { help?: boolean }).help) {
    console.log(help);
    return { exit: 0 };
  }
  return { values };
}
