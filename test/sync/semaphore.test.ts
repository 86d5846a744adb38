import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';

import { Semaphore } from '../../src/sync/index.js';
import { CanceledError, InternalError, InvalidArgumentError } from '../../src/errors.js';
import { flush, prng, track } from './helpers.js';

describe('Semaphore', () => {
  test('constructor rejects capacities that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new Semaphore(bad), InvalidArgumentError, `capacity ${bad}`);
    }
    const s = new Semaphore(3);
    assert.equal(s.capacity, 3);
    assert.equal(s.available, 3);
    assert.equal(s.waiting, 0);
  });

  test('weighted acquire and release', async () => {
    const s = new Semaphore(10);
    await s.acquire(3);
    await s.acquire(7);
    assert.equal(s.available, 0);
    const one = track(s.acquire(1));
    await flush();
    assert.equal(one.state, 'pending');
    assert.equal(s.waiting, 1);
    s.release(3);
    await flush();
    assert.equal(one.state, 'fulfilled');
    assert.equal(s.available, 2);
    assert.equal(s.waiting, 0);
    s.release(7);
    s.release(1);
    assert.equal(s.available, 10);
  });

  test('a release wakes as many queued waiters as now fit, in order', async () => {
    const s = new Semaphore(4);
    await s.acquire(4);
    const a = track(s.acquire(1));
    const b = track(s.acquire(2));
    const c = track(s.acquire(2));
    s.release(4);
    await flush();
    assert.deepEqual([a.state, b.state, c.state], ['fulfilled', 'fulfilled', 'pending']);
    assert.equal(s.available, 1);
    s.release(1);
    await flush();
    assert.equal(c.state, 'fulfilled');
    assert.equal(s.available, 0);
  });

  test('invalid weights are rejected immediately with InvalidArgumentError', async () => {
    const s = new Semaphore(5);
    await s.acquire(5);
    // Over capacity: would block forever, so it must fail even though the semaphore is full.
    await assert.rejects(s.acquire(6), InvalidArgumentError);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(s.acquire(bad), InvalidArgumentError, `weight ${bad}`);
      assert.throws(() => s.tryAcquire(bad), InvalidArgumentError);
      assert.throws(() => s.release(bad), InvalidArgumentError);
    }
    assert.throws(() => s.tryAcquire(6), InvalidArgumentError);
    assert.equal(s.waiting, 0);
    assert.equal(s.available, 0);
  });

  test('tryAcquire takes free tokens but never jumps the queue', async () => {
    const s = new Semaphore(3);
    assert.equal(s.tryAcquire(2), true);
    assert.equal(s.tryAcquire(2), false);
    assert.equal(s.available, 1);
    const big = track(s.acquire(3));
    // One token is free, but a waiter is ahead.
    assert.equal(s.tryAcquire(1), false);
    s.release(2);
    await flush();
    assert.equal(big.state, 'fulfilled');
    assert.equal(s.available, 0);
  });

  test('FIFO fairness: a heavy waiter at the head blocks later light ones', async () => {
    const s = new Semaphore(10);
    await s.acquire(6);
    const heavy = track(s.acquire(10));
    const light = track(s.acquire(1));
    await flush();
    assert.equal(s.available, 4);
    assert.equal(light.state, 'pending', 'light waiter must not overtake the heavy one');
    assert.equal(s.waiting, 2);
    s.release(6);
    await flush();
    assert.equal(heavy.state, 'fulfilled');
    assert.equal(light.state, 'pending');
    s.release(10);
    await flush();
    assert.equal(light.state, 'fulfilled');
    assert.equal(s.available, 9);
  });

  test('cancelling the heavy head waiter unblocks the lighter ones behind it', async () => {
    const s = new Semaphore(10);
    await s.acquire(6);
    const ac = new AbortController();
    const heavy = track(s.acquire(10, ac.signal));
    const a = track(s.acquire(2));
    const b = track(s.acquire(2));
    const c = track(s.acquire(1));
    await flush();
    assert.deepEqual([a.state, b.state, c.state], ['pending', 'pending', 'pending']);
    ac.abort();
    await flush();
    assert.equal(heavy.state, 'rejected');
    assert.ok(heavy.error instanceof CanceledError);
    assert.deepEqual([a.state, b.state, c.state], ['fulfilled', 'fulfilled', 'pending']);
    assert.equal(s.available, 0);
    assert.equal(s.waiting, 1);
    s.release(2);
    await flush();
    assert.equal(c.state, 'fulfilled');
    assert.equal(s.waiting, 0);
  });

  test('cancelling a waiter in the middle grants nothing out of order', async () => {
    const s = new Semaphore(4);
    await s.acquire(4);
    const ac = new AbortController();
    const head = track(s.acquire(3));
    const middle = track(s.acquire(1, ac.signal));
    const tail = track(s.acquire(1));
    ac.abort();
    await flush();
    assert.equal(middle.state, 'rejected');
    assert.deepEqual([head.state, tail.state], ['pending', 'pending']);
    assert.equal(s.waiting, 2);
    s.release(4);
    await flush();
    assert.deepEqual([head.state, tail.state], ['fulfilled', 'fulfilled']);
    assert.equal(s.available, 0);
  });

  test('an already-aborted signal rejects even when tokens are free', async () => {
    const s = new Semaphore(2);
    const reason = new Error('stop');
    await assert.rejects(s.acquire(1, AbortSignal.abort(reason)), (err: unknown) => {
      assert.ok(err instanceof CanceledError);
      assert.equal(err.cause, reason);
      return true;
    });
    assert.equal(s.available, 2);
    assert.equal(s.waiting, 0);
  });

  test('abort racing with a grant returns the tokens and passes them on', async () => {
    const s = new Semaphore(2);
    await s.acquire(2);
    const ac = new AbortController();
    const first = track(s.acquire(2, ac.signal));
    const second = track(s.acquire(1));
    // Grant to `first`, then abort before it resumes.
    s.release(2);
    ac.abort();
    await flush();
    assert.equal(first.state, 'rejected');
    assert.ok(first.error instanceof CanceledError);
    assert.equal(second.state, 'fulfilled');
    assert.equal(s.available, 1);
    s.release(1);
    assert.equal(s.available, 2);
  });

  test('one signal shared by many waiters: one listener, all cancelled, tokens intact', async () => {
    const s = new Semaphore(3);
    await s.acquire(3);
    const ac = new AbortController();
    const waiters = Array.from({ length: 50 }, (_, i) => track(s.acquire((i % 3) + 1, ac.signal)));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    ac.abort();
    // Tokens freed while the abort is being delivered must not go to cancelled waiters.
    s.release(3);
    await flush();
    assert.ok(waiters.every((w) => w.state === 'rejected' && w.error instanceof CanceledError));
    assert.equal(s.available, 3);
    assert.equal(s.waiting, 0);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  test('releasing more than is held throws InternalError and changes nothing', async () => {
    const s = new Semaphore(5);
    assert.throws(() => s.release(), InternalError);
    await s.acquire(2);
    assert.throws(() => s.release(3), InternalError);
    assert.equal(s.available, 3);
    s.release(2);
    assert.throws(() => s.release(1), InternalError);
    assert.equal(s.available, 5);
  });

  test('1000 weight-1 waiters on capacity 1 are served in FIFO order', async () => {
    const s = new Semaphore(1);
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        s.run(async () => {
          order.push(i);
          await flush();
        }),
      ),
    );
    assert.deepEqual(
      order,
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.equal(s.available, 1);
  });

  test('run bounds concurrency, honours weight, releases on throw, and skips fn when cancelled', async () => {
    const s = new Semaphore(3);
    let active = 0;
    let maxActive = 0;
    const job = async (): Promise<void> => {
      active++;
      maxActive = Math.max(maxActive, active);
      await flush();
      active--;
    };
    await Promise.all(Array.from({ length: 20 }, () => s.run(job)));
    assert.equal(maxActive, 3);

    maxActive = 0;
    await Promise.all(Array.from({ length: 6 }, () => s.run(job, { weight: 2 })));
    assert.equal(maxActive, 1, 'weight 2 on capacity 3 allows one job at a time');
    assert.equal(s.available, 3);

    const boom = new Error('boom');
    await assert.rejects(
      s.run(async () => {
        throw boom;
      }),
      (err: unknown) => err === boom,
    );
    assert.equal(s.available, 3);

    await s.acquire(3);
    const ac = new AbortController();
    let called = false;
    const cancelled = track(
      s.run(
        async () => {
          called = true;
        },
        { signal: ac.signal },
      ),
    );
    ac.abort();
    await flush();
    assert.equal(cancelled.state, 'rejected');
    assert.ok(cancelled.error instanceof CanceledError);
    assert.equal(called, false);
    s.release(3);
    assert.equal(s.available, 3);
  });

  test('randomised weights and cancellations never exceed capacity and leak no tokens', async () => {
    for (const seed of [11, 12, 13, 14, 15]) {
      const rand = prng(seed);
      const capacity = 8;
      const s = new Semaphore(capacity);
      let inUse = 0;
      let maxInUse = 0;
      let completed = 0;
      const ran = new Set<number>();
      const n = 300;
      const controllers = Array.from({ length: n }, () => new AbortController());
      const tasks = controllers.map(async (ac, i) => {
        const weight = 1 + Math.floor(rand() * capacity);
        if (rand() < 0.05) ac.abort();
        try {
          await s.acquire(weight, ac.signal);
        } catch (err) {
          assert.ok(err instanceof CanceledError, `task ${i}: ${String(err)}`);
          assert.ok(ac.signal.aborted);
          return;
        }
        ran.add(i);
        inUse += weight;
        maxInUse = Math.max(maxInUse, inUse);
        if (rand() < 0.5) await flush();
        inUse -= weight;
        completed++;
        s.release(weight);
        if (rand() < 0.3) controllers[i + 1]?.abort();
        if (rand() < 0.2) controllers[i + 1 + Math.floor(rand() * 20)]?.abort();
      });
      await Promise.all(tasks);
      assert.ok(maxInUse <= capacity, `seed ${seed}: ${maxInUse} tokens in use`);
      assert.ok(completed > 0 && completed < n, `seed ${seed}: schedule exercised nothing`);
      for (let i = 0; i < n; i++) {
        if (!controllers[i]?.signal.aborted) assert.ok(ran.has(i), `seed ${seed}: task ${i} never ran`);
      }
      assert.equal(s.available, capacity, `seed ${seed}: tokens leaked`);
      assert.equal(s.waiting, 0);
    }
  });
});
