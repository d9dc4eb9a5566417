import type { Command } from '../main.js';

export const command: Command = {
  summary: 'status (not implemented yet)',
  async run() {
    console.error('kst status: not implemented yet');
    return 1;
  },
};
