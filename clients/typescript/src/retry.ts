/** When to try again: a small policy that answers "after N milliseconds" or "give up". */

export interface RetryPolicy {
  /** Retries after the first try. */
  attempts: number;
  /** The first wait in milliseconds; it doubles at each retry. */
  backoffMs: number;
  /** The longest wait in milliseconds. */
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 2, backoffMs: 200, maxBackoffMs: 5_000 };
/** Live log streams: attempts in a row without a new line before giving up. */
export const STREAM_RECONNECT: RetryPolicy = { attempts: 5, backoffMs: 250, maxBackoffMs: 4_000 };

/**
 * Milliseconds to wait before retry number `retry` (1-based), or `undefined` to give up. A server's
 * Retry-After `hintMs` is taken when it is longer than the backoff, up to `maxBackoffMs`.
 */
export function retryDelay(policy: RetryPolicy, retry: number, hintMs?: number): number | undefined {
  if (retry < 1 || retry > policy.attempts) return undefined;
  let wait = Math.min(policy.backoffMs * 2 ** (retry - 1), policy.maxBackoffMs);
  if (hintMs !== undefined) wait = Math.min(Math.max(wait, hintMs), policy.maxBackoffMs);
  return wait;
}

export function retryPolicy(retries: number | Partial<RetryPolicy> | undefined): RetryPolicy {
  if (retries === undefined) return DEFAULT_RETRY;
  if (typeof retries === "number") return { ...DEFAULT_RETRY, attempts: Math.max(0, Math.floor(retries)) };
  return { ...DEFAULT_RETRY, ...retries };
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
