/**
 * Platform I/O behind one entry point (after twemproxy's src/event/nc_event.h): everything the
 * data path does with Node's internals is in this folder, each use checked at start-up with
 * Node's public path as the fallback.
 *
 *   fast-read.ts      reads reach the owner's callback straight from the socket's handle
 *                     (one shared buffer); RINGSIDE_PLAIN_READ=1 switches it off
 *   fast-write.ts     writes go to the handle when nothing is queued; RINGSIDE_PLAIN_WRITE=1
 *   stream-binding.ts the one loader of Node's stream_wrap binding both use
 *   clock.ts          one monotonic clock reading per socket read
 *
 * `npm test` runs the data-path and fault suites a second time with both switches on, so the
 * fallback path is proven by the same tests.
 */
export { adoptClient, onread, readDirect } from './fast-read';
export type { ChunkHandler } from './fast-read';
export { SocketWriter, fastWriteAvailable } from './fast-write';
export { clockNow, readTime } from './clock';
