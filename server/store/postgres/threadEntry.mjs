// PostgreSQL store threads' entry: teaches this thread's loader TypeScript (tsx), then runs the
// thread's module (the writer or the reader), named in its workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
