/**
 * Partition cases (cases.ts, issue 23): Random loss on one host's link.
 */
import { runCases } from './cases';

runCases([7]);
