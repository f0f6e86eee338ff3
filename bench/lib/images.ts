import { productImage, PRODUCT_SHOT } from '../../test/helpers/images.ts';
import { mapLimit } from './load.ts';

const cache: Buffer[] = [];

/**
 * `count` distinct small product PNGs (≈ 1 KB, 240×180), so duplicate detection never
 * answers from an earlier result. Generated once per run and reused: every scenario has a
 * Redis prefix of its own, so a photo is new to each.
 */
export async function distinctPhotos(count: number): Promise<Buffer[]> {
  if (count > 1_000_000) throw new Error('productImage has 1,000,000 distinct variants');
  if (cache.length < count) {
    const start = cache.length;
    const made = await mapLimit(count - start, 8, (index) => productImage('png', PRODUCT_SHOT, start + index));
    cache.push(...made);
  }
  return cache.slice(0, count);
}
