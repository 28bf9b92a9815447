/** Addresses and accounts set up by scripts/e2e-server.sh. */
export const CONSOLE_URL = 'http://127.0.0.1:3100';
/** What users reach: switchyard-proxy's public listener. */
export const APP_URL = 'http://127.0.0.1:3180/';
export const ENVIRONMENT = 'production';

export const USERS = {
  admin: { username: 'admin', password: 'admin-password-1' },
  dana: { username: 'dana', password: 'deployer-password-1' },
  victor: { username: 'victor', password: 'viewer-password-1' },
  alice: { username: 'alice', password: 'approver-password-1' },
  bob: { username: 'bob', password: 'approver-password-2' },
} as const;

export type Account = (typeof USERS)[keyof typeof USERS];
