import { QUALITY_FLAGS, type QualityFlag, type QualityReport, type QualityThresholds } from '@cutout/shared/views';

/** Alpha (of 255) from which a pixel counts as visible: fainter is matting noise. */
const VISIBLE_ALPHA = 16;
/** Alpha from which a pixel counts as opaque: the product itself, not its soft edge. */
const OPAQUE_ALPHA = 240;
/** The measures are taken on the alpha channel scaled to this long side (nearest neighbour, so every sample is a real pixel). */
export const QUALITY_SAMPLE_SIDE = 512;

export type QualityMeasures = Omit<QualityReport, 'flags'>;

/**
 * One pass over an alpha channel (`width` × `height`, one byte per pixel): how much of the
 * frame the product covers, how much of it is only partly opaque, and how far opaque
 * pixels run along the frame's edges.
 */
export function measureAlpha(alpha: Uint8Array, width: number, height: number): QualityMeasures {
  let visible = 0;
  let opaque = 0;
  for (let i = 0; i < alpha.length; i++) {
    const value = alpha[i]!;
    if (value >= VISIBLE_ALPHA) visible++;
    if (value >= OPAQUE_ALPHA) opaque++;
  }
  const opaqueShare = (count: number, length: number) => (length > 0 ? count / length : 0);
  let top = 0,
    bottom = 0,
    left = 0,
    right = 0;
  for (let x = 0; x < width; x++) {
    if (alpha[x]! >= OPAQUE_ALPHA) top++;
    if (alpha[(height - 1) * width + x]! >= OPAQUE_ALPHA) bottom++;
  }
  for (let y = 0; y < height; y++) {
    if (alpha[y * width]! >= OPAQUE_ALPHA) left++;
    if (alpha[y * width + width - 1]! >= OPAQUE_ALPHA) right++;
  }
  return {
    subjectCoverage: round(opaqueShare(visible, width * height)),
    edgeContact: round(
      Math.max(
        opaqueShare(top, width),
        opaqueShare(bottom, width),
        opaqueShare(left, height),
        opaqueShare(right, height),
      ),
    ),
    semitransparentShare: round(opaqueShare(visible - opaque, visible)),
  };
}

/**
 * The flags the measures raise. An empty cutout, or one whose background was not removed,
 * carries that one flag only: the frame's edges and partial transparency say nothing more
 * about it.
 */
export function qualityFlags(measures: QualityMeasures, thresholds: QualityThresholds): QualityFlag[] {
  if (measures.subjectCoverage < thresholds.emptyBelow) return ['empty_cutout'];
  if (measures.subjectCoverage >= thresholds.unremovedFrom) return ['background_not_removed'];
  const raised = new Set<QualityFlag>();
  if (measures.edgeContact >= thresholds.edgeContactFrom) raised.add('subject_cut_off');
  if (measures.semitransparentShare >= thresholds.semitransparentFrom) raised.add('mostly_semitransparent');
  if (measures.subjectCoverage < thresholds.tinyBelow) raised.add('tiny_subject');
  return QUALITY_FLAGS.filter((flag) => raised.has(flag));
}

const round = (share: number) => Math.round(share * 1000) / 1000;
