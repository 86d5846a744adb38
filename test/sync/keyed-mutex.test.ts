import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';

import { KeyedMutex } from '../../src/sync/index.js';
import { CanceledError, InternalError, isCanceled } from '../../src/errors.js';
import { flush, prng, track } from './helpers.js';

describe('KeyedMutex', () => {
  test('lock, isLocked, unlock, and the key is forgotten afterwards', async () => {
    const m = new KeyedMutex();
    assert.equal(m.isLocked('k'), false);
    await m.lock('k');
    assert.equal(m.isLocked('k'), true);
    assert.equal(m.size, 1);
    m.unlock('k');
    assert.equal(m.isLocked('k'), false);
    assert.equal(m.size, 0);
  });

  test('1000 waiters on one key acquire one at a time, in FIFO order', async () => {
    const m = new KeyedMutex();
    const n = 1000;
    const order: number[] = [];
    let active = 0;
    let maxActive = 0;
    let sizeInside = 0;
    const tasks: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      tasks.push(
        (async () => {
          await m.lock('k');
          active++;
          maxActive = Math.max(maxActive, active);
          order.push(i);
          sizeInside = Math.max(sizeInside, m.size);
          // Span a macrotask so overlapping holders would be visible.
          await flush();
          active--;
          m.unlock('k');
        })(),
      );
    }
    await Promise.all(tasks);
    assert.equal(maxActive, 1);
    assert.deepEqual(
      order,
      Array.from({ length: n }, (_, i) => i),
    );
    assert.equal(sizeInside, 1);
    assert.equal(m.size, 0);
  });

  test('unlock wakes exactly one waiter (hand-off, no thundering herd)', async () => {
    const m = new KeyedMutex();
    await m.lock('k');
    const waiters = [track(m.lock('k')), track(m.lock('k')), track(m.lock('k'))];
    await flush();
    assert.deepEqual(
      waiters.map((w) => w.state),
      ['pending', 'pending', 'pending'],
    );
    m.unlock('k');
    await flush();
    assert.deepEqual(
      waiters.map((w) => w.state),
      ['fulfilled', 'pending', 'pending'],
    );
    // The key never became free between holders.
    assert.equal(m.isLocked('k'), true);
    m.unlock('k');
    await flush();
    assert.deepEqual(
      waiters.map((w) => w.state),
      ['fulfilled', 'fulfilled', 'pending'],
    );
    m.unlock('k');
    await flush();
    assert.equal(waiters[2]?.state, 'fulfilled');
    m.unlock('k');
    assert.equal(m.size, 0);
  });

  test('mutual exclusion: read-await-write on a shared counter loses no update', async () => {
    const n = 50;
    let counter = 0;
    const incrementSlowly = async (): Promise<void> => {
      const seen = counter;
      await flush();
      counter = seen + 1;
    };

    // Control: without the lock the same pattern does lose updates, so the check
    // below can fail.
    await Promise.all(Array.from({ length: n }, () => incrementSlowly()));
    assert.ok(counter < n, `control run should lose updates, got ${counter}`);

    counter = 0;
    const m = new KeyedMutex();
    await Promise.all(Array.from({ length: n }, () => m.withLock('counter', incrementSlowly)));
    assert.equal(counter, n);
    assert.equal(m.size, 0);
  });

  test('different keys do not block each other', async () => {
    const m = new KeyedMutex();
    await m.lock('a');
    const b = track(m.lock('b'));
    const a2 = track(m.lock('a'));
    await flush();
    assert.equal(b.state, 'fulfilled');
    assert.equal(a2.state, 'pending');
    assert.equal(m.size, 2);
    m.unlock('b');
    await flush();
    assert.equal(a2.state, 'pending', 'unlocking b must not wake a waiter on a');
    m.unlock('a');
    await flush();
    assert.equal(a2.state, 'fulfilled');
    m.unlock('a');
    assert.equal(m.size, 0);
  });

  test('tryLock succeeds on a free key, fails on a held one, and never jumps the queue', async () => {
    const m = new KeyedMutex();
    assert.equal(m.tryLock('k'), true);
    assert.equal(m.tryLock('k'), false);
    const waiter = track(m.lock('k'));
    assert.equal(m.tryLock('k'), false, 'held with a waiter queued');
    m.unlock('k');
    // Handed to the waiter: not free even before the waiter has resumed.
    assert.equal(m.tryLock('k'), false);
    await flush();
    assert.equal(waiter.state, 'fulfilled');
    assert.equal(m.tryLock('k'), false);
    m.unlock('k');
    assert.equal(m.size, 0);
    assert.equal(m.tryLock('k'), true);
    m.unlock('k');
  });

  test('unlock of a key that is not held throws InternalError', async () => {
    const m = new KeyedMutex();
    assert.throws(() => m.unlock('nope'), InternalError);
    await m.lock('k');
    m.unlock('k');
    assert.throws(() => m.unlock('k'), InternalError, 'double unlock');
    assert.equal(m.size, 0);
  });

  test('cancel while waiting: the waiter rejects, leaves the queue, the others proceed in order', async () => {
    const m = new KeyedMutex();
    await m.lock('k');
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    const order: number[] = [];
    const waiters = controllers.map((ac, i) =>
      track(
        m.lock('k', ac.signal).then(() => {
          order.push(i);
          m.unlock('k');
        }),
      ),
    );
    const reason = new Error('user gave up');
    controllers[2]?.abort(reason);
    await flush();
    const rejected = waiters[2];
    assert.equal(rejected?.state, 'rejected');
    assert.ok(rejected.error instanceof CanceledError);
    assert.equal(rejected.error.cause, reason);
    // Still held by the original holder; the rest still wait.
    assert.equal(m.isLocked('k'), true);
    assert.deepEqual(
      waiters.map((w) => w.state),
      ['pending', 'pending', 'rejected', 'pending', 'pending'],
    );

    m.unlock('k');
    await Promise.allSettled(waiters.map((w) => w.promise));
    assert.deepEqual(order, [0, 1, 3, 4]);
    assert.equal(m.size, 0);
  });

  test('cancelling the head waiter passes the turn to the next one', async () => {
    const m = new KeyedMutex();
    await m.lock('k');
    const ac = new AbortController();
    const head = track(m.lock('k', ac.signal));
    const next = track(m.lock('k'));
    ac.abort();
    await flush();
    assert.equal(head.state, 'rejected');
    assert.ok(isCanceled(head.error));
    assert.equal(next.state, 'pending');
    m.unlock('k');
    await flush();
    assert.equal(next.state, 'fulfilled');
    m.unlock('k');
    assert.equal(m.size, 0);
  });

  test('cancelling every waiter leaks no key', async () => {
    const m = new KeyedMutex();
    await m.lock('k');
    const ac = new AbortController();
    const waiters = Array.from({ length: 100 }, () => track(m.lock('k', ac.signal)));
    ac.abort();
    await flush();
    assert.ok(waiters.every((w) => w.state === 'rejected' && w.error instanceof CanceledError));
    m.unlock('k');
    assert.equal(m.size, 0);
    assert.equal(m.isLocked('k'), false);
  });

  test('an already-aborted signal rejects at once, even when the key is free', async () => {
    const m = new KeyedMutex();
    const reason = new Error('too late');
    const signal = AbortSignal.abort(reason);
    await assert.rejects(m.lock('free', signal), (err: unknown) => {
      assert.ok(err instanceof CanceledError);
      assert.equal(err.cause, reason);
      return true;
    });
    assert.equal(m.isLocked('free'), false);
    assert.equal(m.size, 0);

    let called = false;
    await assert.rejects(
      m.withLock(
        'free',
        async () => {
          called = true;
        },
        signal,
      ),
      CanceledError,
    );
    assert.equal(called, false);
    assert.equal(m.size, 0);
  });

  test('abort racing with hand-off: the lock goes to the next waiter, never lost or doubled', async () => {
    const m = new KeyedMutex();
    await m.lock('k');
    const ac = new AbortController();
    const first = track(m.lock('k', ac.signal));
    const second = track(m.lock('k'));
    // Hand the lock to `first`, then abort before `first` has had a chance to resume.
    m.unlock('k');
    ac.abort();
    await flush();
    assert.equal(first.state, 'rejected');
    assert.ok(first.error instanceof CanceledError);
    assert.equal(second.state, 'fulfilled');
    assert.equal(m.isLocked('k'), true);
    m.unlock('k');
    assert.equal(m.size, 0);
  });

  test('abort racing with hand-off to the only waiter frees the key', async () => {
    const m = new KeyedMutex();
    await m.lock('k');
    const ac = new AbortController();
    const only = track(m.lock('k', ac.signal));
    m.unlock('k');
    ac.abort();
    await flush();
    assert.equal(only.state, 'rejected');
    assert.equal(m.isLocked('k'), false);
    assert.equal(m.size, 0);
    assert.equal(m.tryLock('k'), true);
    m.unlock('k');
  });

  test('aborting after the lock was acquired does not affect the holder', async () => {
    const m = new KeyedMutex();
    const ac = new AbortController();
    await m.lock('k', ac.signal);
    ac.abort();
    await flush();
    assert.equal(m.isLocked('k'), true);
    m.unlock('k');
    assert.equal(m.size, 0);
  });

  test('a long-lived signal does not accumulate abort listeners', async () => {
    const m = new KeyedMutex();
    const ac = new AbortController();
    await m.lock('k');
    const waiters = Array.from({ length: 100 }, () => m.lock('k', ac.signal).then(() => m.unlock('k')));
    // One shared listener for all waiters on the signal (no MaxListenersExceededWarning).
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    m.unlock('k');
    await Promise.all(waiters);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    assert.equal(m.size, 0);
  });

  test('withLock returns the value, releases on throw, and does not run fn when cancelled', async () => {
    const m = new KeyedMutex();
    assert.equal(await m.withLock('k', async () => 42), 42);
    assert.equal(m.size, 0);

    const boom = new Error('boom');
    await assert.rejects(
      m.withLock('k', async () => {
        throw boom;
      }),
      (err: unknown) => err === boom,
    );
    assert.equal(m.size, 0);

    await m.lock('k');
    const ac = new AbortController();
    let called = false;
    const pending = track(
      m.withLock(
        'k',
        async () => {
          called = true;
        },
        ac.signal,
      ),
    );
    ac.abort();
    await flush();
    assert.equal(pending.state, 'rejected');
    assert.ok(pending.error instanceof CanceledError);
    assert.equal(called, false);
    m.unlock('k');
    assert.equal(m.size, 0);
  });

  test('randomised cancellations (incl. right after hand-off) keep exclusion, FIFO and no leak', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rand = prng(seed);
      const m = new KeyedMutex();
      const n = 300;
      const controllers = Array.from({ length: n }, () => new AbortController());
      const acquired: number[] = [];
      let active = 0;
      let maxActive = 0;

      const tasks = controllers.map(async (ac, i) => {
        if (rand() < 0.05) ac.abort(); // already aborted at call time
        try {
          await m.lock('k', ac.signal);
        } catch (err) {
          assert.ok(err instanceof CanceledError, `task ${i}: ${String(err)}`);
          assert.ok(ac.signal.aborted, `task ${i} rejected without an abort`);
          return;
        }
        active++;
        maxActive = Math.max(maxActive, active);
        acquired.push(i);
        if (rand() < 0.5) await flush();
        active--;
        m.unlock('k');
        // Race: abort whoever might just have been handed the lock.
        if (rand() < 0.3) controllers[i + 1]?.abort();
        // And cancel some random waiter further back.
        if (rand() < 0.2) controllers[i + 1 + Math.floor(rand() * 20)]?.abort();
      });
      await Promise.all(tasks);

      assert.equal(maxActive, 1, `seed ${seed}: overlapping holders`);
      const sorted = [...acquired].sort((a, b) => a - b);
      assert.deepEqual(acquired, sorted, `seed ${seed}: FIFO order broken`);
      for (let i = 0; i < n; i++) {
        if (!controllers[i]?.signal.aborted) assert.ok(acquired.includes(i), `seed ${seed}: task ${i} never acquired`);
      }
      assert.ok(acquired.length > 0 && acquired.length < n, `seed ${seed}: schedule exercised nothing`);
      assert.equal(m.size, 0, `seed ${seed}: key leaked`);
    }
  });
});
