import { describe, expect, it } from 'vitest';
import { DEFAULT_QUALITY_THRESHOLDS } from '@cutout/shared/views';
import { measureAlpha, qualityFlags } from './quality.ts';

/** A `width` × `height` alpha channel, `value` inside the box and 0 elsewhere. */
function alphaOf(
  width: number,
  height: number,
  box: { left: number; top: number; width: number; height: number } | null,
  value = 255,
): Uint8Array {
  const alpha = new Uint8Array(width * height);
  if (!box) return alpha;
  for (let y = box.top; y < box.top + box.height; y++)
    alpha.fill(value, y * width + box.left, y * width + box.left + box.width);
  return alpha;
}

const flagsOf = (alpha: Uint8Array, width: number, height: number) =>
  qualityFlags(measureAlpha(alpha, width, height), DEFAULT_QUALITY_THRESHOLDS);

describe('cutout quality measures', () => {
  it('measures coverage, edge contact and the semitransparent share', () => {
    expect(measureAlpha(alphaOf(100, 50, { left: 25, top: 10, width: 50, height: 20 }), 100, 50)).toEqual({
      subjectCoverage: 0.2,
      edgeContact: 0,
      semitransparentShare: 0,
    });
    // Touching the bottom edge along 40 of its 100 pixels.
    expect(measureAlpha(alphaOf(100, 50, { left: 30, top: 20, width: 40, height: 30 }), 100, 50)).toMatchObject({
      edgeContact: 0.4,
    });
    // Half of the product only half opaque.
    const ghost = alphaOf(100, 50, { left: 0, top: 10, width: 100, height: 10 }, 128);
    ghost.fill(255, 1500, 2000);
    expect(measureAlpha(ghost, 100, 50)).toMatchObject({ subjectCoverage: 0.2, semitransparentShare: 0.5 });
  });

  it('ignores faint matting noise below the visible threshold', () => {
    const alpha = alphaOf(100, 100, { left: 40, top: 40, width: 20, height: 20 });
    for (let i = 0; i < alpha.length; i += 3) if (alpha[i] === 0) alpha[i] = 10;
    expect(measureAlpha(alpha, 100, 100)).toEqual({ subjectCoverage: 0.04, edgeContact: 0, semitransparentShare: 0 });
  });

  it('raises no flag for a product well inside the frame', () => {
    expect(flagsOf(alphaOf(100, 100, { left: 20, top: 20, width: 60, height: 50 }), 100, 100)).toEqual([]);
  });

  it('flags an empty cutout, and only that', () => {
    expect(flagsOf(alphaOf(100, 100, null), 100, 100)).toEqual(['empty_cutout']);
    expect(flagsOf(alphaOf(100, 100, { left: 0, top: 0, width: 2, height: 2 }), 100, 100)).toEqual(['empty_cutout']);
  });

  it('flags a frame left opaque as background_not_removed, and only that', () => {
    expect(flagsOf(alphaOf(100, 100, { left: 0, top: 0, width: 100, height: 100 }), 100, 100)).toEqual([
      'background_not_removed',
    ]);
  });

  it('flags a product touching a large share of an edge as subject_cut_off, not a small touch', () => {
    expect(flagsOf(alphaOf(100, 100, { left: 30, top: 30, width: 40, height: 70 }), 100, 100)).toEqual([
      'subject_cut_off',
    ]);
    expect(flagsOf(alphaOf(100, 100, { left: 45, top: 30, width: 5, height: 70 }), 100, 100)).toEqual([]);
  });

  it('flags a mostly partly transparent product, and a tiny one', () => {
    expect(flagsOf(alphaOf(100, 100, { left: 20, top: 20, width: 60, height: 60 }, 100), 100, 100)).toEqual([
      'mostly_semitransparent',
    ]);
    expect(flagsOf(alphaOf(100, 100, { left: 50, top: 50, width: 10, height: 10 }), 100, 100)).toEqual([
      'tiny_subject',
    ]);
  });

  it('raises each flag at its configured threshold', () => {
    const touching = measureAlpha(alphaOf(100, 100, { left: 45, top: 30, width: 5, height: 70 }), 100, 100);
    expect(qualityFlags(touching, { ...DEFAULT_QUALITY_THRESHOLDS, edgeContactFrom: 0.05 })).toEqual([
      'subject_cut_off',
    ]);
    expect(qualityFlags(touching, { ...DEFAULT_QUALITY_THRESHOLDS, tinyBelow: 0.05 })).toEqual(['tiny_subject']);
  });
});
