import type { Command } from '../main.js';

export const command: Command = {
  summary: 'lab (not implemented yet)',
  async run() {
    console.error('kst lab: not implemented yet');
    return 1;
  },
};
