import type { Command } from '../main.js';

export const command: Command = {
  summary: 'plan (not implemented yet)',
  async run() {
    console.error('kst plan: not implemented yet');
    return 1;
  },
};
