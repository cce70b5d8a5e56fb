/** Injected into the browser bundle: core uses Node's Buffer, the page gets the `buffer` package's. */
import { Buffer } from 'buffer';

export { Buffer };
