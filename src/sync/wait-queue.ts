/**
 * Internal FIFO queue used by KeyedMutex and Semaphore for their waiters.
 *
 * A doubly linked list rather than an array because a cancelled waiter must leave the
 * middle of the queue: with thousands of waiters on one key, `Array#splice` per abort
 * would make mass cancellation quadratic. Not part of the public API.
 */

/** Handle returned by `push`, used to remove that entry later in O(1). */
export class QueueNode<T> {
  /** @internal */ prev: QueueNode<T> | undefined = undefined;
  /** @internal */ next: QueueNode<T> | undefined = undefined;
  /** @internal */ linked = true;

  constructor(readonly value: T) {}
}

/** FIFO with O(1) push, shift and removal of an arbitrary entry by its handle. */
export class WaitQueue<T> {
  private head: QueueNode<T> | undefined = undefined;
  private tail: QueueNode<T> | undefined = undefined;
  private count = 0;

  /** Number of entries queued. */
  get length(): number {
    return this.count;
  }

  /** Append at the back; keep the handle to `remove` it before it reaches the front. */
  push(value: T): QueueNode<T> {
    const node = new QueueNode(value);
    node.prev = this.tail;
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.count++;
    return node;
  }

  /** The front entry without removing it. */
  peek(): T | undefined {
    return this.head?.value;
  }

  /** Remove and return the front entry. */
  shift(): T | undefined {
    const node = this.head;
    if (node === undefined) return undefined;
    this.unlink(node);
    return node.value;
  }

  /**
   * Remove an entry wherever it is. Returns false if it had already left the queue
   * (shifted or removed before), so callers can tell "I was still waiting" apart from
   * "I was already served".
   */
  remove(node: QueueNode<T>): boolean {
    if (!node.linked) return false;
    this.unlink(node);
    return true;
  }

  private unlink(node: QueueNode<T>): void {
    if (node.prev === undefined) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = undefined;
    node.next = undefined;
    node.linked = false;
    this.count--;
  }
}
