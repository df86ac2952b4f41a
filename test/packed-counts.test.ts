// The packed store a scrape keeps its histograms' counts in between collect and render: every
// width (1, 2, 4, 8 bytes) gives back exactly the counts it was given.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PackedCountsStore } from '../src/core/packed-counts.js';

test('packed counts read back exactly at every width, and stay valid while the store grows', () => {
  const store = new PackedCountsStore();
  const inputs = [
    [0, 1, 255, 0],
    [256, 65_535, 3],
    [65_536, 2 ** 32 - 1, 0, 7],
    [2 ** 32, 2 ** 53 - 1, 1],
    Array.from({ length: 50_000 }, (_, k) => (k * 7919) % 1000), // past the first buffer: it grows
    [9, 8, 7],
  ].map((a) => Float64Array.from(a));
  const packed = inputs.map((counts, i) => {
    const into = store.take(counts.length);
    into.set(counts);
    return store.pack(i * 10, into);
  });
  assert.equal(
    packed.map((p) => p.width),
    [1, 2, 4, 8, 2, 1],
  );
  // Read in another order than packed, twice: each read gives its own counts.
  for (const i of [3, 0, 5, 4, 1, 2, 2, 0]) {
    assert.is(packed[i].offset, i * 10);
    assert.equal(Array.from(packed[i].counts), Array.from(inputs[i]), `histogram ${i}`);
  }
});

test.run();
