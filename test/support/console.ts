// Captures what a CLI command prints (console.log and console.error, in order) for the
// duration of each test of the file that calls it.
import { afterEach, beforeEach, jest } from '@jest/globals';

/** Call at the top level of a test file; the returned array is refilled for every test. */
export function captureConsole(): string[] {
  const out: string[] = [];
  beforeEach(() => {
    out.length = 0;
    jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });
  return out;
}
