import type { Command } from '../main.js';

export const command: Command = {
  summary: 'agent (not implemented yet)',
  async run() {
    console.error('kst agent: not implemented yet');
    return 1;
  },
};
