import type { Command } from '../main.js';

export const command: Command = {
  summary: 'cleanup (not implemented yet)',
  async run() {
    console.error('kst cleanup: not implemented yet');
    return 1;
  },
};
