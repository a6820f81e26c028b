/** The errors of reading and writing the configuration the nodes keep (src/cluster). */

/** A configuration copy that must not be used; `message` says why. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** No seed answered at all. */
export class NoSeedReachableError extends Error {
  override name = 'NoSeedReachableError';
}

/** Seeds answered, but none holds a usable configuration. */
export class NoConfigurationError extends Error {
  override name = 'NoConfigurationError';
}

/** A configuration could not be written to the masters it had to reach. */
export class ConfigWriteError extends Error {
  override name = 'ConfigWriteError';
}
