import type { Command } from '../main.js';

export const command: Command = {
  summary: 'validate (not implemented yet)',
  async run() {
    console.error('kst validate: not implemented yet');
    return 1;
  },
};
