import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Collector } from '../../src/gc/collector.js';
import { GCScheduler } from '../../src/gc/scheduler.js';
import { LeaseManager } from '../../src/leases/manager.js';
import { openTestRoot } from '../helpers/root.js';

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await sleep(10);
  assert.ok(predicate(), 'condition reached');
}

test('a collection runs once the mutation threshold is reached, not before', async (t) => {
  const root = await openTestRoot(t);
  const scheduler = new GCScheduler(new Collector({ root }), { mutationThreshold: 3, startupDelayMs: -1 });
  t.after(() => scheduler.stop());
  scheduler.notifyMutation();
  scheduler.notifyMutation();
  await sleep(30);
  assert.equal(scheduler.last, undefined);
  scheduler.notifyMutation();
  await until(() => scheduler.last !== undefined);
});

test('the deletion threshold triggers a collection that removes what the deleted lease held', async (t) => {
  const root = await openTestRoot(t);
  const scheduler = new GCScheduler(new Collector({ root }), { deletionThreshold: 1, mutationThreshold: 0, startupDelayMs: -1 });
  t.after(() => scheduler.stop());
  const leases = new LeaseManager({ db: root.db, namespace: 'default', gc: scheduler });
  leases.create({ id: 'l' });
  const w = await root.content.namespace('default').writer({ ref: 'r', lease: 'l' });
  await w.write(Buffer.from('x'));
  const { digest } = await w.commit();
  await leases.delete('l');
  await until(() => !root.db.namespace('default').content.has(digest));
});

test('the startup delay schedules a first collection', async (t) => {
  const root = await openTestRoot(t);
  const scheduler = new GCScheduler(new Collector({ root }), { startupDelayMs: 1 });
  t.after(() => scheduler.stop());
  scheduler.start();
  await until(() => scheduler.last !== undefined);
});

test('the pause budget defers a triggered collection after a long pause', async (t) => {
  const root = await openTestRoot(t);
  const collector = new Collector({ root });
  // A threshold this small turns any pause into a wait far longer than the test.
  const scheduler = new GCScheduler(collector, { pauseThreshold: 1e-9, mutationThreshold: 1, startupDelayMs: -1 });
  t.after(() => scheduler.stop());
  const first = await scheduler.collect();
  assert.ok(first.pauseMs > 0);
  const before = scheduler.last;
  scheduler.notifyMutation();
  await sleep(50);
  assert.equal(scheduler.last, before, 'no second collection inside the budget');
  // An explicit collection (leases.delete sync) is not subject to the budget.
  await scheduler.collect();
  assert.notEqual(scheduler.last, before);
});

test('stop() cancels a scheduled collection', async (t) => {
  const root = await openTestRoot(t);
  const scheduler = new GCScheduler(new Collector({ root }), { startupDelayMs: 20 });
  scheduler.start();
  await scheduler.stop();
  await sleep(50);
  assert.equal(scheduler.last, undefined);
});
