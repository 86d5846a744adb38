import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { SingleFlight } from '../../src/sync/index.js';
import { flush, track } from './helpers.js';

/** A promise plus its resolve/reject, so a test decides when the shared work ends. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  test('100 concurrent callers share one execution and its value', async () => {
    const sf = new SingleFlight<{ id: number }>();
    let calls = 0;
    const gate = deferred<void>();
    const fn = async (): Promise<{ id: number }> => {
      calls++;
      await gate.promise;
      return { id: calls };
    };
    const results = Array.from({ length: 100 }, () => sf.do('blob', fn));
    assert.equal(calls, 1);
    assert.equal(sf.inFlight('blob'), true);
    assert.equal(sf.size, 1);
    gate.resolve();
    const settled = await Promise.all(results);
    assert.equal(calls, 1);
    const first = settled[0]?.value;
    assert.ok(first !== undefined);
    // The very same object for everybody, not copies from separate runs.
    assert.ok(settled.every((r) => r.value === first));
    // Joiners always see shared; the leader too, because others joined (Go semantics).
    assert.ok(settled.every((r) => r.shared));
    assert.equal(sf.size, 0);
  });

  test('a lone caller gets shared === false', async () => {
    const sf = new SingleFlight<number>();
    assert.deepEqual(await sf.do('k', async () => 7), { value: 7, shared: false });
  });

  test('an error is shared by every caller, and fn still ran once', async () => {
    const sf = new SingleFlight<number>();
    let calls = 0;
    const gate = deferred<void>();
    const boom = new Error('registry unavailable');
    const fn = async (): Promise<number> => {
      calls++;
      await gate.promise;
      throw boom;
    };
    const results = Array.from({ length: 10 }, () => track(sf.do('k', fn)));
    gate.resolve();
    await flush();
    assert.equal(calls, 1);
    for (const r of results) {
      assert.equal(r.state, 'rejected');
      assert.equal(r.error, boom);
    }
    assert.equal(sf.inFlight('k'), false);
    assert.equal(sf.size, 0);
  });

  test('the key is forgotten after it settles: a later call runs again', async () => {
    const sf = new SingleFlight<number>();
    let calls = 0;
    const fn = async (): Promise<number> => ++calls;
    assert.equal((await sf.do('k', fn)).value, 1);
    assert.equal(sf.inFlight('k'), false);
    assert.equal((await sf.do('k', fn)).value, 2);
    assert.equal(calls, 2);

    // Also after a failure: the error is not cached.
    let fail = true;
    const flaky = async (): Promise<number> => {
      if (fail) throw new Error('first attempt fails');
      return 99;
    };
    await assert.rejects(sf.do('f', flaky));
    fail = false;
    assert.deepEqual(await sf.do('f', flaky), { value: 99, shared: false });
    assert.equal(sf.size, 0);
  });

  test('the key is forgotten before callers resume, so a caller can start a fresh run', async () => {
    const sf = new SingleFlight<number>();
    let calls = 0;
    const fn = async (): Promise<number> => ++calls;
    const second = await sf.do('k', fn).then(() => {
      assert.equal(sf.inFlight('k'), false);
      return sf.do('k', fn);
    });
    assert.deepEqual(second, { value: 2, shared: false });
  });

  test('different keys run independently', async () => {
    const sf = new SingleFlight<string>();
    const gates = { a: deferred<void>(), b: deferred<void>() };
    const calls: string[] = [];
    const make = (key: 'a' | 'b') => async (): Promise<string> => {
      calls.push(key);
      await gates[key].promise;
      return key;
    };
    const a = track(sf.do('a', make('a')));
    const b = track(sf.do('b', make('b')));
    assert.deepEqual(calls, ['a', 'b']);
    assert.equal(sf.size, 2);
    gates.b.resolve();
    await flush();
    assert.equal(b.state, 'fulfilled');
    assert.equal(a.state, 'pending');
    assert.equal(sf.inFlight('a'), true);
    assert.equal(sf.inFlight('b'), false);
    gates.a.resolve();
    await flush();
    assert.deepEqual(a.value, { value: 'a', shared: false });
    assert.equal(sf.size, 0);
  });

  test('a synchronous throw from fn becomes a shared rejection and the key is forgotten', async () => {
    const sf = new SingleFlight<number>();
    const boom = new Error('sync');
    const fn = (): Promise<number> => {
      throw boom;
    };
    const r = track(sf.do('k', fn));
    await flush();
    assert.equal(r.state, 'rejected');
    assert.equal(r.error, boom);
    assert.equal(sf.size, 0);
  });

  test('fn sees its own key as in flight', async () => {
    const sf = new SingleFlight<boolean>();
    const { value } = await sf.do('k', async () => sf.inFlight('k'));
    assert.equal(value, true);
  });
});
