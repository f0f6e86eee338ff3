import { describe, expect, it } from 'vitest';
import { parseRenditions, type RenditionPlan } from './spec.ts';

const plans = (value: unknown): RenditionPlan[] => {
  const parsed = parseRenditions(value);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.plans;
};
const refusal = (value: unknown): string => {
  const parsed = parseRenditions(value);
  if (parsed.ok) throw new Error('accepted');
  return parsed.message;
};

describe('rendition specs', () => {
  it('resolves the marketplace preset to a square white JPEG of the product at 85 % of at least 1000 px', () => {
    expect(plans([{ name: 'amazon', preset: 'marketplace' }])).toEqual([
      {
        name: 'amazon',
        format: 'jpeg',
        quality: 90,
        background: '#ffffff',
        crop: 'subject',
        padding: 0.075,
        canvas: 'square',
        maxSize: null,
        minSize: 1000,
      },
    ]);
  });

  it('resolves the web preset to a transparent WebP of at most 1600 px', () => {
    expect(plans([{ name: 'web', preset: 'web' }])[0]).toMatchObject({
      format: 'webp',
      background: 'transparent',
      crop: 'none',
      canvas: 'original',
      maxSize: 1600,
      minSize: null,
    });
  });

  it('lets fields given beside a preset override it', () => {
    expect(
      plans([{ name: 'brand', preset: 'marketplace', background: '#FFEEDD', padding: 0.1, quality: 75 }])[0],
    ).toMatchObject({
      format: 'jpeg',
      background: '#ffeedd',
      padding: 0.1,
      quality: 75,
      canvas: 'square',
      minSize: 1000,
    });
  });

  it('defaults to a transparent PNG of the whole cutout, and a JPEG to white', () => {
    expect(plans([{ name: 'plain' }])[0]).toEqual({
      name: 'plain',
      format: 'png',
      quality: 100,
      background: 'transparent',
      crop: 'none',
      padding: 0,
      canvas: 'original',
      maxSize: null,
      minSize: null,
    });
    expect(plans([{ name: 'flat', format: 'jpeg' }])[0]).toMatchObject({ background: '#ffffff', quality: 90 });
    expect(plans([{ name: 'flat', preset: 'web', format: 'jpeg' }])[0]).toMatchObject({ background: '#ffffff' });
  });

  it("drops a preset's size bounds under a canvas of a given size", () => {
    expect(plans([{ name: 'banner', preset: 'marketplace', canvas: { width: 1200, height: 600 } }])[0]).toMatchObject({
      canvas: { width: 1200, height: 600 },
      minSize: null,
      maxSize: null,
    });
  });

  it('accepts no renditions and up to eight', () => {
    expect(plans([])).toEqual([]);
    expect(plans(Array.from({ length: 8 }, (_, i) => ({ name: `r${i}` })))).toHaveLength(8);
  });

  it.each([
    ['not an array', { name: 'a' }, 'renditions must be a JSON array of rendition specs'],
    ['nine specs', Array.from({ length: 9 }, (_, i) => ({ name: `r${i}` })), 'renditions may hold at most 8 specs'],
    ['a spec that is not an object', ['web'], 'renditions[0]: must be an object'],
    ['a missing name', [{ format: 'png' }], 'renditions[0].name: is required'],
    ['a name with capitals', [{ name: 'Web' }], 'renditions[0] ("Web").name: must be 1 to 32 characters'],
    ['a name of 33 characters', [{ name: 'a'.repeat(33) }], '.name: must be 1 to 32 characters'],
    [
      'two specs of one name',
      [{ name: 'a' }, { name: 'a' }],
      'renditions[1] ("a").name: "a" is used by an earlier spec',
    ],
    [
      'an unknown preset',
      [{ name: 'a', preset: 'amazon' }],
      'renditions[0] ("a").preset: must be "marketplace" or "web"',
    ],
    [
      'an unknown format',
      [{ name: 'a', format: 'gif' }],
      'renditions[0] ("a").format: must be "png", "webp" or "jpeg"',
    ],
    ['quality 0', [{ name: 'a', quality: 0 }], '("a").quality: must be from 1 to 100'],
    ['quality 101', [{ name: 'a', quality: 101 }], '("a").quality: must be from 1 to 100'],
    ['a fractional quality', [{ name: 'a', quality: 50.5 }], '("a").quality: must be a whole number'],
    [
      'a named colour',
      [{ name: 'a', background: 'white' }],
      '("a").background: must be "transparent" or a colour "#rrggbb"',
    ],
    ['a short hex colour', [{ name: 'a', background: '#fff' }], '("a").background: must be'],
    [
      'a transparent JPEG',
      [{ name: 'a', format: 'jpeg', background: 'transparent' }],
      '("a").background: cannot be "transparent" for a JPEG',
    ],
    [
      'a transparent marketplace rendition',
      [{ name: 'a', preset: 'marketplace', background: 'transparent' }],
      '("a").background: cannot be "transparent" for a JPEG',
    ],
    ['an unknown crop', [{ name: 'a', crop: 'tight' }], '("a").crop: must be "none" or "subject"'],
    ['padding 0.5', [{ name: 'a', padding: 0.5 }], '("a").padding: must be from 0 to 0.45'],
    ['negative padding', [{ name: 'a', padding: -0.1 }], '("a").padding: must be from 0 to 0.45'],
    [
      'an unknown canvas',
      [{ name: 'a', canvas: 'portrait' }],
      '("a").canvas: must be "original", "square" or {"width": W, "height": H}',
    ],
    [
      'a canvas of width 0',
      [{ name: 'a', canvas: { width: 0, height: 100 } }],
      '("a").canvas.width: must be at least 1 px',
    ],
    [
      'a canvas wider than 5000 px',
      [{ name: 'a', canvas: { width: 5001, height: 100 } }],
      '("a").canvas.width: must be at most 5000 px',
    ],
    [
      'max_size beside a sized canvas',
      [{ name: 'a', canvas: { width: 100, height: 100 }, max_size: 50 }],
      '("a").max_size: does not apply to a canvas of a given width and height',
    ],
    [
      'min_size above max_size',
      [{ name: 'a', min_size: 900, max_size: 800 }],
      '("a").min_size: min_size (900) is larger than max_size (800)',
    ],
    [
      "max_size below the preset's min_size",
      [{ name: 'a', preset: 'marketplace', max_size: 800 }],
      '("a").max_size: min_size (1000) is larger than max_size (800)',
    ],
    ['max_size of 0', [{ name: 'a', max_size: 0 }], '("a").max_size: must be at least 1 px'],
    ['an unknown field', [{ name: 'a', colour: 'red' }], 'renditions[0] ("a").colour: is not a rendition field'],
  ])('refuses %s, naming the spec and the field', (_, value, message) => {
    expect(refusal(value)).toContain(message);
  });

  it('names the second bad spec by position and name, past a good first one', () => {
    expect(refusal([{ name: 'ok' }, { name: 'thumb', format: 'tiff' }])).toBe(
      'renditions[1] ("thumb").format: must be "png", "webp" or "jpeg"',
    );
  });
});
