// Worker-thread entry: teaches this thread's loader TypeScript (tsx), then runs the model worker.
import { register } from 'tsx/esm/api';

register();
await import('./modelWorker.ts');
