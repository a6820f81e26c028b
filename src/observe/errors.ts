/** The errors of the observability endpoints and settings (src/observe). */

/** host:port, with an IPv6 host in brackets */
export const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export class ObservePortInUseError extends Error {
  override name = 'ObservePortInUseError';
  constructor(readonly bind: string, readonly port: number) {
    super(`observe port ${hostPort(bind, port)} is already in use (choose another with --metrics-port)`);
  }
}

export class ObserveListenError extends Error {
  override name = 'ObserveListenError';
  constructor(readonly bind: string, readonly port: number, cause: Error) {
    super(`cannot listen on observe port ${hostPort(bind, port)}: ${cause.message}`, { cause });
  }
}

export class SlowLogSettingError extends Error {
  override name = 'SlowLogSettingError';
}
