import { describe, expect, it } from 'vitest';
import { parseRenditions, type RenditionPlan } from '@cutout/shared/renditions';
import { layoutRendition, RenditionError, subjectBox } from './layout.ts';

const plan = (spec: Record<string, unknown>): RenditionPlan => {
  const parsed = parseRenditions([{ name: 'r', ...spec }]);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.plans[0]!;
};

const IMAGE = { width: 3000, height: 2000 };
const SUBJECT = { left: 1000, top: 700, width: 600, height: 400 };

describe('rendition layout', () => {
  it('puts a marketplace product at 85 % of a square canvas of at least 1000 px, upscaling a small one', () => {
    const layout = layoutRendition(plan({ preset: 'marketplace' }), IMAGE, SUBJECT);
    expect(layout).toMatchObject({
      source: SUBJECT,
      canvas: { width: 1000, height: 1000 },
      product: { width: 850, height: 567 },
      offset: { left: 75, top: 216 },
      upscaled: true,
    });
  });

  it('keeps a large product at its own size on the square, not upscaled', () => {
    const layout = layoutRendition(plan({ preset: 'marketplace' }), IMAGE, {
      left: 0,
      top: 0,
      width: 2550,
      height: 1700,
    });
    expect(layout).toMatchObject({
      canvas: { width: 3000, height: 3000 },
      product: { width: 2550, height: 1700 },
      upscaled: false,
    });
  });

  it('scales the whole cutout down to max_size for web, keeping its shape', () => {
    expect(layoutRendition(plan({ preset: 'web' }), IMAGE, null)).toMatchObject({
      source: { left: 0, top: 0, width: 3000, height: 2000 },
      canvas: { width: 1600, height: 1067 },
      product: { width: 1600, height: 1067 },
      offset: { left: 0, top: 0 },
      upscaled: false,
    });
  });

  it('fits the product inside the margins of a canvas of a given size, centred', () => {
    const layout = layoutRendition(
      plan({ crop: 'subject', padding: 0.1, canvas: { width: 1200, height: 600 } }),
      IMAGE,
      SUBJECT,
    );
    // 480 px of height inside the margins: the 600 × 400 product becomes 720 × 480.
    expect(layout).toMatchObject({
      canvas: { width: 1200, height: 600 },
      product: { width: 720, height: 480 },
      offset: { left: 240, top: 60 },
      upscaled: true,
    });
  });

  it('adds padding around the original shape', () => {
    expect(layoutRendition(plan({ padding: 0.25 }), { width: 100, height: 50 }, null)).toMatchObject({
      canvas: { width: 200, height: 100 },
      product: { width: 100, height: 50 },
      offset: { left: 50, top: 25 },
    });
  });

  it('never exceeds the largest rendition side', () => {
    expect(
      layoutRendition(plan({ canvas: 'square', padding: 0.45 }), { width: 4000, height: 1000 }, null).canvas,
    ).toEqual({ width: 5000, height: 5000 });
  });

  it('refuses to crop an empty cutout to its subject', () => {
    expect(() => layoutRendition(plan({ preset: 'marketplace' }), IMAGE, null)).toThrow(RenditionError);
    expect(() => layoutRendition(plan({ preset: 'marketplace' }), IMAGE, null)).toThrow('the cutout is empty');
  });
});

describe('subject box', () => {
  it('bounds the pixels at least a quarter opaque, past faint noise', () => {
    const width = 20,
      height = 10;
    const rgba = new Uint8Array(width * height * 4);
    const setAlpha = (x: number, y: number, alpha: number) => {
      rgba[(y * width + x) * 4 + 3] = alpha;
    };
    setAlpha(0, 0, 40); // noise in a corner
    setAlpha(19, 9, 63);
    for (let y = 3; y <= 6; y++) for (let x = 5; x <= 12; x++) setAlpha(x, y, 255);
    setAlpha(14, 2, 64); // a soft edge that counts
    expect(subjectBox(rgba, { width, height })).toEqual({ left: 5, top: 2, width: 10, height: 5 });
    expect(subjectBox(new Uint8Array(width * height * 4), { width, height })).toBeNull();
  });
});
