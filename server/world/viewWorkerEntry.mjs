// View-thread entry: teaches this thread's loader TypeScript (tsx), then runs the view worker.
import { register } from 'tsx/esm/api';

register();
await import('./viewWorker.ts');
